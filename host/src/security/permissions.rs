//! The names of the extension permissions security decides on: calling an
//! extension's route, and consenting to an extension's background work.
//! Both are checked like any extension permission (`extension_permissions`
//! of a role, `*` patterns allowed).

/// The extension permission a route needs: `extension:<id>/<first path
/// segment>` (`extension:<id>/*` in a role grants them all).
pub fn route_permission(extension: &str, path: &str) -> String {
    let route = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    format!("extension:{extension}/{route}")
}

/// The permission a user grants an extension to run work on their behalf.
pub fn consent_permission(extension: &str) -> String {
    format!("schedule:{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names() {
        assert_eq!(route_permission("reporter", "/summary/today"), "extension:reporter/summary");
        assert_eq!(route_permission("reporter", "summary"), "extension:reporter/summary");
        assert_eq!(route_permission("reporter", "//x//y"), "extension:reporter/x");
        assert_eq!(route_permission("reporter", "/"), "extension:reporter/");
        assert_eq!(route_permission("reporter", ""), "extension:reporter/");
        assert_eq!(consent_permission("reporter"), "schedule:reporter");
    }
}
