//! `warden hash`: a bcrypt hash (for internal_users.yml) of a password read from stdin.

use anyhow::Context;

pub fn run() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on stdin");
    }
    println!("{}", warden_host::security::password::hash(password)?);
    Ok(())
}
