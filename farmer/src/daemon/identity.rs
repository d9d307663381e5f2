//! The farmer's identity: an ed25519 key kept beside the farm it is bound to.
//!
//! Sectors are bound to the hash of the farmer's public key, so losing or replacing the key makes every
//! plotted sector worthless. The key therefore lives in the farm directory (`identity.key`), is created
//! with owner-only permissions when absent and is never overwritten. The format is the one `acre key
//! generate` writes: the 32-byte secret as 64 hex characters and a newline.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::error::Error;

/// Name of the identity file inside a farm directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// Loads the farmer key from `farm_dir/identity.key`, creating the directory and a fresh key from the
/// operating system's randomness if there is none. An existing file is never overwritten.
pub fn load_or_create_identity(farm_dir: &Path) -> Result<SigningKey, Error> {
    let path = farm_dir.join(IDENTITY_FILE);
    if path.exists() {
        return read_key_file(&path);
    }
    std::fs::create_dir_all(farm_dir).map_err(Error::io(format!("creating {}", farm_dir.display())))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| Error::InvalidIdentity {
        path: path.clone(),
        reason: format!("no randomness from the OS: {error}"),
    })?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let mut file = match file {
        Ok(file) => file,
        // Another process created it between our check and now: theirs wins.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return read_key_file(&path),
        Err(error) => return Err(Error::io(format!("creating {}", path.display()))(error)),
    };
    file.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!("writing {}", path.display())))?;
    let key = SigningKey::from_bytes(&secret);
    tracing::info!(
        target: "acre::farmer",
        path = %path.display(),
        public_key = %hex::encode(key.verifying_key().to_bytes()),
        "created a new farmer identity"
    );
    Ok(key)
}

/// Reads a key file in the `acre key generate` format.
pub fn read_key_file(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let invalid = |reason: &str| Error::InvalidIdentity {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = hex::decode(text.trim()).map_err(|_| invalid("not a hex key file"))?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| invalid("must hold a 32-byte secret key (64 hex characters)"))?;
    Ok(SigningKey::from_bytes(&secret))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn identity_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let farm = dir.path().join("farm");
        let first = load_or_create_identity(&farm).expect("created");
        let path = farm.join(IDENTITY_FILE);
        let mode = std::fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(text, format!("{}\n", hex::encode(first.to_bytes())));
        let second = load_or_create_identity(&farm).expect("loaded");
        assert_eq!(first.to_bytes(), second.to_bytes());
    }

    #[test]
    fn existing_identity_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(IDENTITY_FILE);
        std::fs::write(&path, format!("{}\n", "07".repeat(32))).expect("written");
        let key = load_or_create_identity(dir.path()).expect("loaded");
        assert_eq!(key.to_bytes(), [7; 32]);

        std::fs::write(&path, "not a key\n").expect("written");
        assert!(matches!(
            load_or_create_identity(dir.path()),
            Err(Error::InvalidIdentity { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "not a key\n");
    }
}
