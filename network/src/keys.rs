//! The peer key: an ed25519 key kept in the data directory, so a process keeps its peer id across
//! restarts (peers' routing tables, reserved peers and bootstrap addresses name it).
//!
//! The file holds the 32-byte secret as 64 hex characters and a newline, is owner-only, and is written
//! crash-safely (a temporary file, fsync, rename, fsync of the directory) so a crash never leaves a torn
//! key behind. An existing key is never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libp2p::identity::{Keypair, ed25519};

use crate::error::Error;
use crate::protocol::PeerId;

/// Name of the peer key file inside a data directory.
pub const PEER_KEY_FILE: &str = "peer.key";

/// A process's peer key.
#[derive(Clone)]
pub struct PeerKey(pub(crate) Keypair);

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerKey({})", self.peer_id())
    }
}

impl PeerKey {
    /// A fresh random key (tests, throwaway peers).
    pub fn generate() -> Self {
        Self(Keypair::generate_ed25519())
    }

    /// The key whose secret is `secret` (deterministic tests).
    pub fn from_secret(mut secret: [u8; 32]) -> Self {
        let secret =
            ed25519::SecretKey::try_from_bytes(&mut secret).expect("any 32 bytes are an ed25519 secret");
        Self(ed25519::Keypair::from(secret).into())
    }

    /// This key's peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId(self.0.public().to_peer_id())
    }

    /// Loads `dir/peer.key`, creating the directory and a fresh key if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(PEER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(&path, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io(format!("reading {}", path.display()))(error)),
        }
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let key = ed25519::Keypair::generate();
        let text = format!("{}\n", hex::encode(key.secret().as_ref()));
        let temporary = dir.join(format!("{PEER_KEY_FILE}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(Error::io(format!("creating {}", temporary.display())))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::io(format!("writing {}", temporary.display())))?;
        drop(file);
        // `hard_link` fails if the key appeared meanwhile (another process): theirs wins.
        match std::fs::hard_link(&temporary, &path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&temporary);
                let text = std::fs::read_to_string(&path)
                    .map_err(Error::io(format!("reading {}", path.display())))?;
                return parse(&path, &text);
            }
            Err(error) => return Err(Error::io(format!("creating {}", path.display()))(error)),
        }
        std::fs::remove_file(&temporary).map_err(Error::io(format!("removing {}", temporary.display())))?;
        std::fs::File::open(dir)
            .and_then(|directory| directory.sync_all())
            .map_err(Error::io(format!("syncing {}", dir.display())))?;
        let key = Self(key.into());
        tracing::info!(target: "acre::network", path = %path.display(), peer = %key.peer_id(), "created a new peer key");
        Ok(key)
    }
}

fn parse(path: &Path, text: &str) -> Result<PeerKey, Error> {
    let invalid = |reason: &str| Error::BadPeerKey {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = hex::decode(text.trim()).map_err(|_| invalid("not hex"))?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| invalid("must hold a 32-byte secret key (64 hex characters)"))?;
    Ok(PeerKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_created_owner_only_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let first = PeerKey::load_or_create(&data).expect("created");
        let path = data.join(PEER_KEY_FILE);
        let mode = std::fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!data.join("peer.key.tmp").exists());
        let again = PeerKey::load_or_create(&data).expect("loaded");
        assert_eq!(first.peer_id(), again.peer_id(), "the peer id survives a restart");
    }

    #[test]
    fn a_damaged_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(PEER_KEY_FILE);
        std::fs::write(&path, "abcd\n").expect("writes");
        let error = PeerKey::load_or_create(dir.path()).expect_err("refused");
        assert!(
            matches!(error, Error::BadPeerKey { ref reason, .. } if reason.contains("32-byte")),
            "{error}"
        );
        std::fs::write(&path, "not hex\n").expect("writes");
        assert!(matches!(
            PeerKey::load_or_create(dir.path()),
            Err(Error::BadPeerKey { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "not hex\n");
    }
}
