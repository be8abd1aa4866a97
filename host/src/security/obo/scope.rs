//! What an OBO token was minted for: its `scope` claim, typed.
//!
//! The claim keeps the strings tokens have always carried, so a token
//! minted before this type existed still verifies and reads the same:
//!
//! | scope | claim |
//! |---|---|
//! | a REST request | `request:<id>` |
//! | a REST request made with an API token | `request:<id>;apitoken:<token id>` |
//! | a scheduled job's run | `job:<id>` |
//! | minted by a user over REST (`generateonbehalfoftoken`) | `user:<description>` |

use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorKind, HasKind};

/// What a token was minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One REST request (an extension route's invocation); `api_token` is
    /// the id of the API token the request came with, whose limits then
    /// bound the extension's cluster calls too.
    Request { id: String, api_token: Option<String> },
    /// One run of the scheduled job with this id.
    Job(String),
    /// A token a user minted over REST, with their description.
    User(String),
}

const REQUEST: &str = "request:";
const API_TOKEN: &str = ";apitoken:";
const JOB: &str = "job:";
const USER: &str = "user:";

impl Scope {
    /// A request's scope, with the API token it came with if any.
    pub fn request(id: impl Into<String>, api_token: Option<&str>) -> Scope {
        Scope::Request { id: id.into(), api_token: api_token.map(str::to_owned) }
    }

    /// The API token whose limits bound the calls made under this scope.
    pub fn api_token(&self) -> Option<&str> {
        match self {
            Scope::Request { api_token, .. } => api_token.as_deref(),
            Scope::Job(_) | Scope::User(_) => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Request { id, api_token: None } => write!(f, "{REQUEST}{id}"),
            Scope::Request { id, api_token: Some(token) } => write!(f, "{REQUEST}{id}{API_TOKEN}{token}"),
            Scope::Job(id) => write!(f, "{JOB}{id}"),
            Scope::User(description) => write!(f, "{USER}{description}"),
        }
    }
}

/// A `scope` claim of none of the known forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope `{0}` is none of `request:`, `job:`, `user:`")]
pub struct UnknownScope(pub String);

impl HasKind for UnknownScope {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Scope, UnknownScope> {
        if let Some(rest) = s.strip_prefix(REQUEST) {
            return Ok(match rest.split_once(API_TOKEN) {
                Some((id, token)) => Scope::request(id, Some(token)),
                None => Scope::request(rest, None),
            });
        }
        if let Some(id) = s.strip_prefix(JOB) {
            return Ok(Scope::Job(id.to_owned()));
        }
        if let Some(description) = s.strip_prefix(USER) {
            return Ok(Scope::User(description.to_owned()));
        }
        Err(UnknownScope(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_write_and_read_the_strings_tokens_always_carried() -> Result<(), UnknownScope> {
        let cases = [
            (Scope::request("r1", None), "request:r1"),
            (Scope::request("r1", Some("abc")), "request:r1;apitoken:abc"),
            (Scope::Job("j-7".into()), "job:j-7"),
            (Scope::User("my script".into()), "user:my script"),
            (Scope::User(String::new()), "user:"),
        ];
        for (scope, text) in cases {
            assert_eq!(scope.to_string(), text);
            assert_eq!(text.parse::<Scope>()?, scope);
        }
        assert_eq!("request:r1;apitoken:abc".parse::<Scope>()?.api_token(), Some("abc"));
        assert_eq!("request:r1".parse::<Scope>()?.api_token(), None);
        assert_eq!("job:x".parse::<Scope>()?.api_token(), None);
        assert!("session:x".parse::<Scope>().is_err_and(|e| e.kind() == ErrorKind::Invalid));
        Ok(())
    }
}
