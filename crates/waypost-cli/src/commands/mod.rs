//! One module per `waypost` subcommand.

pub(crate) mod routes;
