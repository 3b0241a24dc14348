//! One module per `waypost` subcommand.

pub(crate) mod client;
pub(crate) mod routes;
