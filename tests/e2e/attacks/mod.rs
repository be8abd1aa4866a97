//! The attack harness: hostile requests and hostile guests against the real
//! `warden` binary, organised by the class of hole they probe (issue #10's
//! hostile review). Each case asserts the refusal *and* that the legitimate
//! path next to it still works, so the next hole of a known class is one
//! more case in the module of its class.
//!
//! | module | who attacks | what must hold |
//! |---|---|---|
//! | `token` | a holder of an API or OBO token | a token never mints a token, never outlives its user's credentials, never carries more than it was given |
//! | `identity` | a JWT user or a token named like someone else | identity is (name, auth source) wherever it is stored or resolved |
//! | `index_names` | a user of the REST API | wildcards, comma lists and percent-encodings never become concrete names or unauthorised writes |
//! | `service_identity` | an extension acting `as service` | it reaches only its own namespace |
//! | `sandbox` | a hostile guest | memory, tables, instances and files stay within the caps; one extension cannot starve another |
//! | `availability` | an unauthenticated client | it cannot stall the executor, fill the disk or hold every connection |

mod availability;
pub(crate) mod identity;
mod index_names;
mod sandbox;
mod service_identity;
pub(crate) mod token;
