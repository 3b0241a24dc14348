//! One module per `waypost` subcommand.

pub(crate) mod client;
pub(crate) mod dev;
pub(crate) mod new;
pub(crate) mod routes;
