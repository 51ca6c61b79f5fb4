//! Giving up root once the capture is open: libpcap needs privileges to open an interface, the
//! parsers never do.

use anyhow::{bail, Context};
use nix::unistd::{geteuid, setgid, setgroups, setuid, Group, Uid, User};

pub fn is_root() -> bool {
    geteuid().is_root()
}

/// Switches to `user` and to `group` (the user's own group by default), with no supplementary
/// groups; fails unless root is gone for good.
pub fn drop_to(user: &str, group: Option<&str>) -> anyhow::Result<()> {
    if !is_root() {
        bail!("--user needs root (it switches from root to that user once the interfaces are open)");
    }
    let account = User::from_name(user)
        .with_context(|| format!("cannot look up user {user}"))?
        .with_context(|| format!("no such user: {user}"))?;
    let gid = match group {
        Some(name) => {
            Group::from_name(name)
                .with_context(|| format!("cannot look up group {name}"))?
                .with_context(|| format!("no such group: {name}"))?
                .gid
        }
        None => account.gid,
    };
    if account.uid.is_root() {
        bail!("--user {user} is root: name an unprivileged account");
    }
    setgroups(&[gid]).context("setgroups")?;
    setgid(gid).context("setgid")?;
    setuid(account.uid).context("setuid")?;
    if setuid(Uid::from_raw(0)).is_ok() || is_root() {
        bail!("root could be regained after switching to {user}: refusing to go on");
    }
    tracing::info!(user, uid = account.uid.as_raw(), gid = gid.as_raw(), "dropped root");
    Ok(())
}
