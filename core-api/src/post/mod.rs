//! Posts with images and the feeds (`/post/*`).

pub mod feed_version;
pub mod repo;
pub mod routes;
pub mod scroll;
pub mod service;
