//! Attacks of class `service_identity` (see main.rs).
