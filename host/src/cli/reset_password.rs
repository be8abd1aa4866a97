//! `warden reset-password <user>`: sets a user's password in the data
//! directory of a stopped server, the way back in after losing the admin
//! password. The new password comes from WARDEN_NEW_PASSWORD or a prompt.

use std::sync::Arc;

use anyhow::Context;

use super::manage;
use warden_host::security::Security;
use warden_host::security::obo::TokenService;
use warden_host::store::Store;

pub fn run(user: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use warden_host::security::{password, service_accounts};
    let path = data_dir.join("store").join("warden.redb");
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: {} is not the data directory of a Warden server",
            path.display(),
            data_dir.display()
        );
    }
    // redb locks the file: this fails while a server has the store open.
    let store = Arc::new(Store::open(&path).with_context(|| {
        format!("cannot open the store (stop the server using {} first)", data_dir.display())
    })?);
    let (security, _) =
        Security::bootstrap(store.clone(), None, None).context("cannot load the security configuration")?;
    // The new password revokes the user's OBO and API tokens (whoever held
    // the old credentials may hold tokens made with them).
    let tokens = TokenService::load_or_create(&store, "warden").context("cannot load the token service")?;
    let security = security.with_obo(Arc::new(tokens));
    if service_accounts::is_service_account(user) {
        anyhow::bail!("`{user}` is a service account: it has no password");
    }
    if !security.state().config.internal_users.contains_key(user) {
        anyhow::bail!("no internal user `{user}` in {}", data_dir.display());
    }
    let new = manage::new_password(user)?;
    password::check_strength(user, &new)?;
    let hash = password::hash(&new)?;
    let disabled = security.update(|config| {
        let record = config.internal_users.get_mut(user).context("the user disappeared")?;
        record.hash = Some(hash);
        Ok::<_, anyhow::Error>(record.disabled)
    })?;
    println!("password of `{user}` reset; tokens issued before are revoked");
    if disabled {
        println!("note: `{user}` is disabled; enable it with the security API before logging in");
    }
    Ok(())
}
