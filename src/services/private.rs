//! The private side of ephemeral services: their folders, in a per-user folder only this
//! user can list, swept of what killed runs left; and the secrets they are given, in files
//! only this user can read.

use std::path::{Path, PathBuf};

use crate::error::environment;

/// The file in each ephemeral service's folder that names the pollpush process owning it.
const OWNER_FILE: &str = "pollpush-owner.pid";

/// A secret for one run: 32 hex digits from the operating system's random source.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes `text` to a new file that only its owner can read.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| environment(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// This user's folder for ephemeral services, `<tmp>/pollpush-<uid>`, made private: mode
/// 0700, or 0711 when a service runs as another user (Postgres under root), who may then
/// pass through it to its own folder but not list it. Refused when it exists and is not
/// ours or is a link, so that nobody else's folder is ever used or swept.
fn user_base(tmp: &Path, traverse_for_others: bool) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: getuid(2) has no failure mode and takes no memory.
    let uid = unsafe { libc::getuid() };
    let base = tmp.join(format!("pollpush-{uid}"));
    match std::fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(environment(format!(
                "cannot create {}: {e}",
                base.display()
            )))
        }
    }
    let meta = std::fs::symlink_metadata(&base)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(environment(format!(
            "{} is not a folder of this user (uid {uid}); remove it, or set TMPDIR to another temp folder",
            base.display()
        )));
    }
    let mode = if traverse_for_others { 0o711 } else { 0o700 };
    if meta.mode() & 0o777 != mode && !(mode == 0o700 && meta.mode() & 0o777 == 0o711) {
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(base)
}

/// A fresh folder `pollpush-<kind>-*` for an ephemeral service in this user's private
/// folder, marked with our pid. Folders left there by runs that were killed (SIGKILL leaves
/// no chance to clean up) are removed first.
pub fn ephemeral_dir(
    kind: &str,
    what: &str,
    other_user: bool,
) -> anyhow::Result<tempfile::TempDir> {
    let base = user_base(&std::env::temp_dir(), other_user)?;
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        for gone in sweep_stale(&base) {
            tracing::info!("removed {} left by a killed run", gone.display());
        }
    });
    let dir = tempfile::Builder::new()
        .prefix(&format!("pollpush-{kind}-"))
        .tempdir_in(&base)
        .map_err(|e| environment(format!("cannot create a temp dir for {what}: {e}")))?;
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
        .map_err(|e| environment(format!("cannot write in {}: {e}", dir.path().display())))?;
    Ok(dir)
}

/// Removes the `pollpush-pg-*` and `pollpush-redis-*` folders under `tmp` whose owning
/// process is gone; returns them. A folder without an owner file, or whose owner still
/// runs, is left alone.
pub fn sweep_stale(tmp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pollpush-pg-") || n.starts_with("pollpush-redis-"))
        })
        .filter(|p| {
            std::fs::read_to_string(p.join(OWNER_FILE))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .is_some_and(crate::procs::is_gone)
        })
        .filter(|p| std::fs::remove_dir_all(p).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_killed_runs_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str, owner: Option<u32>| {
            let d = tmp.path().join(name);
            std::fs::create_dir_all(d.join("data")).unwrap();
            if let Some(pid) = owner {
                std::fs::write(d.join(OWNER_FILE), pid.to_string()).unwrap();
            }
            d
        };
        let dead = make("pollpush-pg-dead", Some(u32::MAX - 1));
        let dead_redis = make("pollpush-redis-dead", Some(u32::MAX - 1));
        let live = make("pollpush-pg-live", Some(std::process::id()));
        let unowned = make("pollpush-redis-old", None);
        let other = make("someone-else", Some(u32::MAX - 1));
        let mut swept = sweep_stale(tmp.path());
        swept.sort();
        assert_eq!(swept, vec![dead.clone(), dead_redis.clone()]);
        assert!(!dead.exists() && !dead_redis.exists());
        assert!(live.exists() && unowned.exists() && other.exists());
    }
}
