//! Members: the `members` table. The member endpoints of the contract build on this.

pub mod repo;

pub use repo::Member;
