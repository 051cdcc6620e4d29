//! Upstream's `AtomicWriter` (pkg/volume/util/atomic_writer.go) layout for configMap,
//! secret, downwardAPI and projected volumes, so that a running container sees a new
//! version all at once:
//!
//! ```text
//! <dir>/..2024_05_01_10_00_00.123456789/   the real files of one version
//! <dir>/..data -> ..2024_05_01_10_00_00.123456789
//! <dir>/key    -> ..data/key               one link per top-level name
//! ```
//!
//! A new version goes into a new timestamped directory, then `..data_tmp` pointing at it
//! is renamed over `..data` (rename is atomic), then names that went away and the old
//! directory are removed. Nothing is written when content and modes are unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::SetUpError;

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// One file of a volume: its bytes and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files of a volume by relative path.
pub(crate) type Payload = BTreeMap<String, FileProjection>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SetUpError + 'a {
    move |error| SetUpError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

/// Writes `payload` into `target` (which must exist). Returns whether anything changed.
/// Not safe to call twice at once for the same directory: the pod worker serializes.
pub(crate) fn write(target: &Path, payload: &Payload) -> Result<bool, SetUpError> {
    let payload = clean_payload(payload)?;
    let data_link = target.join(DATA_DIR);
    let old_ts = match fs::read_link(&data_link) {
        Ok(p) => Some(target.join(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("readlink", &data_link)(e)),
    };

    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts {
        to_remove = paths_to_remove(&payload, old)?;
        if !should_write(&payload, old)? && to_remove.is_empty() {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    if let Err(e) = write_version(target, &payload, &ts_dir) {
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    // Names that no longer exist: only the links at the top of the volume are removed; the
    // rest went away with the old version's directory.
    for p in to_remove.iter().filter(|p| !p.contains('/')) {
        let path = target.join(p);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(io_err("remove", &path)(e));
        }
    }
    if let Some(old) = old_ts
        && old != ts_dir
    {
        fs::remove_dir_all(&old).map_err(io_err("remove", &old))?;
    }
    Ok(true)
}

/// Steps 6–9: files into the new directory, top-level links, then the atomic swap.
fn write_version(target: &Path, payload: &Payload, ts_dir: &Path) -> Result<(), SetUpError> {
    for (rel, file) in payload {
        let full = ts_dir.join(rel);
        if let Some(parent) = full.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err("mkdir", parent))?;
        }
        fs::write(&full, &file.data).map_err(io_err("write", &full))?;
        // Set explicitly: the mode given at creation is filtered by the umask.
        fs::set_permissions(&full, fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("chmod", &full))?;
    }
    for rel in payload.keys() {
        let top = rel.split('/').next().unwrap_or(rel);
        let visible = target.join(top);
        match fs::symlink_metadata(&visible) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                symlink(Path::new(DATA_DIR).join(top), &visible)
                    .map_err(io_err("symlink", &visible))?;
            }
            _ => {}
        }
    }
    let ts_name = ts_dir.file_name().map(PathBuf::from).unwrap_or_default();
    let tmp_link = target.join(NEW_DATA_DIR);
    // A link left by an interrupted write would make symlink() fail.
    let _ = fs::remove_file(&tmp_link);
    symlink(&ts_name, &tmp_link).map_err(io_err("symlink", &tmp_link))?;
    let data_link = target.join(DATA_DIR);
    if let Err(e) = fs::rename(&tmp_link, &data_link) {
        let _ = fs::remove_file(&tmp_link);
        return Err(io_err("rename", &tmp_link)(e));
    }
    Ok(())
}

/// Upstream's `validatePath` on each key, then `filepath.Clean`.
fn clean_payload(payload: &Payload) -> Result<Payload, SetUpError> {
    let mut out = Payload::new();
    for (path, file) in payload {
        validate_path(path)?;
        let clean: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if clean.is_empty() {
            return Err(SetUpError::InvalidPath(format!(
                "invalid path: must not be empty: \"{path}\""
            )));
        }
        out.insert(clean.join("/"), file.clone());
    }
    Ok(out)
}

fn validate_path(path: &str) -> Result<(), SetUpError> {
    let invalid = |msg: String| Err(SetUpError::InvalidPath(msg));
    if path.is_empty() {
        return invalid(format!("invalid path: must not be empty: \"{path}\""));
    }
    if path.starts_with('/') {
        return invalid(format!("invalid path: must be relative path: {path}"));
    }
    if path.len() > MAX_PATH {
        return invalid(format!(
            "invalid path: must be less than or equal to {MAX_PATH} characters"
        ));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return invalid(format!("invalid path: must not contain '..': {path}"));
        }
        if item.len() > MAX_FILE_NAME {
            return invalid(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return invalid(format!("invalid path: must not start with '..': {path}"));
    }
    Ok(())
}

/// Whether any file's content or mode differs from the current version.
fn should_write(payload: &Payload, old_ts: &Path) -> Result<bool, SetUpError> {
    for (rel, file) in payload {
        let path = old_ts.join(rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        if !meta.is_file() || meta.permissions().mode() & 0o7777 != file.mode & 0o7777 {
            return Ok(true);
        }
        let on_disk = fs::read(&path).map_err(io_err("read", &path))?;
        if on_disk != file.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Paths of the current version (files and directories, relative) that the new payload
/// no longer has, counting every parent directory of a new file as kept.
fn paths_to_remove(payload: &Payload, old_ts: &Path) -> Result<BTreeSet<String>, SetUpError> {
    let mut current = BTreeSet::new();
    walk(old_ts, "", &mut current)?;
    let mut keep = BTreeSet::new();
    for rel in payload.keys() {
        let mut p = rel.as_str();
        loop {
            keep.insert(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    Ok(current.difference(&keep).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> Result<(), SetUpError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("readdir", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("readdir", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type().map_err(io_err("stat", dir))?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

/// A new `..YYYY_MM_DD_HH_MM_SS.<n>` directory (UTC), mode 0755 whatever the umask.
fn new_timestamp_dir(target: &Path) -> Result<PathBuf, SetUpError> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y_%m_%d_%H_%M_%S")
        .to_string();
    loop {
        let dir = target.join(format!("..{stamp}.{}", rand::random::<u32>()));
        match fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &dir))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("mkdir", &dir)(e)),
        }
    }
}
