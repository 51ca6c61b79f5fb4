//! Giving up root once the capture is open: libpcap needs privileges to open an interface, the
//! parsers never do.

use anyhow::{bail, Context};
use nix::sys::prctl::set_dumpable;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{geteuid, setgid, setgroups, setuid, Gid, Group, Uid, User};

/// Payload buffers may hold passwords in clear (docs/security.md): the process writes no core
/// dump, whatever limits it was started with (the limit is lowered for good, hard limit too),
/// and is not dumpable (nor traced or read through /proc by its user).
pub fn no_core_dumps() -> anyhow::Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context("cannot lower the core dump limit")?;
    set_dumpable(false).context("cannot make the process not dumpable")?;
    Ok(())
}

pub fn is_root() -> bool {
    geteuid().is_root()
}

/// The account `--user` and `--group` name, looked up before anything is opened: a name that is
/// not there is a bad command line.
pub struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
}

/// Looks up `user` and `group` (the user's own group by default); `user` must not be root, and
/// switching to it needs root.
pub fn account(user: &str, group: Option<&str>) -> anyhow::Result<Account> {
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
    Ok(Account { name: user.to_string(), uid: account.uid, gid })
}

impl Account {
    /// The account's name, as `--user` gave it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Switches to `account`, with no supplementary groups; fails unless root is gone for good.
pub fn drop_to(account: &Account) -> anyhow::Result<()> {
    let Account { name: user, uid, gid } = account;
    let (uid, gid) = (*uid, *gid);
    setgroups(&[gid]).context("setgroups")?;
    setgid(gid).context("setgid")?;
    setuid(uid).context("setuid")?;
    if setuid(Uid::from_raw(0)).is_ok() || is_root() {
        bail!("root could be regained after switching to {user}: refusing to go on");
    }
    tracing::info!(user, uid = uid.as_raw(), gid = gid.as_raw(), "dropped root");
    Ok(())
}
