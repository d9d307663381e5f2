//! `acre key`: farmer and account keys.
//!
//! A key file holds one ed25519 secret key as 64 hex characters and a newline. It is created with
//! owner-only permissions and never overwritten; the public key (which is also the account address and the
//! farmer identity sectors are bound to) is derived from it and printed.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;

/// Generates a key from the operating system's randomness and writes it to `path` (which must not exist).
pub(crate) fn generate(path: &Path) -> Result<()> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| anyhow::anyhow!("no randomness from the OS: {error}"))?;
    let key = SigningKey::from_bytes(&secret);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (existing key files are never overwritten)",
                path.display()
            )
        })?;
    file.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(())
}

/// Reads a key file.
pub(crate) fn read(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes =
        hex::decode(text.trim()).with_context(|| format!("{} is not a hex key file", path.display()))?;
    let Ok(secret) = <[u8; 32]>::try_from(bytes) else {
        bail!("{} must hold a 32-byte secret key", path.display());
    };
    Ok(SigningKey::from_bytes(&secret))
}

/// Prints the public key of a key file.
pub(crate) fn inspect(path: &Path) -> Result<()> {
    println!("{}", hex::encode(read(path)?.verifying_key().to_bytes()));
    Ok(())
}
