//! Installed extensions: the store of what was installed and approved
//! ([`installed`]) and the lifecycle that changes it ([`lifecycle`]:
//! install → pending → approve → serving, removal, query).

pub mod installed;
pub mod lifecycle;
