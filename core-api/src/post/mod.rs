//! Posts with images and the feeds (`/post/*`).

pub mod repo;
pub mod routes;
pub mod service;

pub use routes::router;
