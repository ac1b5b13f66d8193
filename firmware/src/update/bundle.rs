//! Bundles: the signed file a firmware update arrives in (sans-IO: bytes in, verdicts out).
//!
//! ```text
//! hearth-<version>-<board>.bundle
//! offset        size        field
//! 0             8           magic "HEARTHUP"
//! 8             2           format, u16 little-endian, = 1
//! 10            2           manifest length M, u16 little-endian, 1..=4096
//! 12            64          Ed25519 signature (RFC 8032 §5.1.6) over the M manifest bytes
//! 76            M           manifest (below)
//! 76+M          image_size  slot image (raw bytes of the slot partition, e.g. an ext4 file system)
//! (end)                     nothing may follow the image
//! ```
//!
//! The manifest is ASCII text, exactly these five lines in this order, each `key=value\n`, nothing else:
//!
//! ```text
//! board=qemu-virt-aarch64          board name (board/<name>.toml), [a-z0-9-], 1..=64 bytes
//! version=0.2.0                    MAJOR.MINOR.PATCH, decimal, no leading zeros
//! min_version=0.1.0                the oldest running version this bundle may replace
//! image_size=33554432              decimal byte count of the slot image, ≥ 1
//! image_sha256=<64 lowercase hex>  SHA-256 (FIPS 180-4) of the slot image
//! ```
//!
//! Order of checks (issue 19 "Bad input"): the header's magic, format and manifest length are the only bytes
//! read before the signature is checked; the manifest is parsed only after its signature verified with the
//! public key built into the firmware, and no field of the bundle decides whether or how to check. The image
//! is then hashed as it streams and compared with `image_sha256` before anything makes it bootable.
//!
//! The same header + manifest, zero padded to [`FOOTER_LEN`], is written as the slot's footer (the last
//! 64 KiB of the slot partition, see [`super::slot`]), so the firmware can tell what version a slot holds.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use std::fmt;

/// First 8 bytes of every bundle and slot footer.
pub const MAGIC: [u8; 8] = *b"HEARTHUP";
/// The one bundle format this firmware reads.
pub const FORMAT: u16 = 1;
/// Offset of the format number (u16 little-endian).
pub const OFF_FORMAT: usize = 8;
/// Offset of the manifest length (u16 little-endian).
pub const OFF_MANIFEST_LEN: usize = 10;
/// Offset of the 64-byte Ed25519 signature over the manifest.
pub const OFF_SIGNATURE: usize = 12;
/// Length of the fixed header; the manifest starts here.
pub const HEADER_LEN: usize = 76;
/// Longest manifest accepted.
pub const MANIFEST_MAX: usize = 4096;
/// Size of the footer at the end of a slot partition (header + manifest, zero padded).
pub const FOOTER_LEN: u64 = 64 * 1024;

/// A firmware version: MAJOR.MINOR.PATCH, compared numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parse `MAJOR.MINOR.PATCH` strictly (decimal, no sign, no leading zeros, nothing after).
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.');
        let mut next = || -> Option<u32> {
            let p = parts.next()?;
            let ok = !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
            if ok { p.parse().ok() } else { None }
        };
        let v = Version(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The signed description of a bundle's slot image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The board the image is for; a box refuses a bundle for another board.
    pub board: String,
    /// The version the image holds; not newer than the running one is refused unless a downgrade
    /// is allowed.
    pub version: Version,
    /// The oldest running version this bundle may replace; an older box must update to it first.
    pub min_version: Version,
    /// Bytes of the slot image that follow the manifest.
    pub image_size: u64,
    /// SHA-256 of the slot image, checked as it streams before the slot is made bootable.
    pub image_sha256: [u8; 32],
}

/// Why a bundle (or footer) is refused; each names what the person should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("this is not a Hearth update bundle (it does not start with HEARTHUP); upload a hearth-<version>-<board>.bundle file")]
    NotABundle,
    #[error("this bundle has format {0}, which this firmware cannot read; update through a version that can, or use a bundle made for this version")]
    Format(u16),
    #[error("the bundle's manifest length {0} is not between 1 and 4096 bytes; the file is damaged or not a Hearth bundle")]
    ManifestLength(usize),
    #[error("the bundle ends before its image is complete ({got} of {want} bytes); the upload was cut short or the file is truncated, upload it again")]
    Truncated { got: u64, want: u64 },
    #[error("the bundle is not signed by a key this firmware trusts; use a bundle made for this box by its maker")]
    Signature,
    #[error("the bundle's manifest is malformed ({0}); the bundle was not made by `hearth bundle`")]
    Manifest(String),
    #[error("the slot image does not match the signed manifest (SHA-256 differs): the bundle was changed or damaged after signing; nothing was made bootable")]
    Hash,
    #[error("the bundle has {0} bytes after its image; the file is damaged or two files were joined")]
    Trailing(u64),
}

/// The fixed header, read before anything is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the manifest that follows the header (1..=[`MANIFEST_MAX`]).
    pub manifest_len: usize,
    /// Ed25519 signature over the manifest bytes, checked before the manifest is parsed.
    pub signature: [u8; 64],
}

impl Header {
    /// Read the header's lengths. Nothing else of the bundle is looked at.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, BundleError> {
        if b[..8] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        let format = u16::from_le_bytes([b[OFF_FORMAT], b[OFF_FORMAT + 1]]);
        if format != FORMAT {
            return Err(BundleError::Format(format));
        }
        let manifest_len = u16::from_le_bytes([b[OFF_MANIFEST_LEN], b[OFF_MANIFEST_LEN + 1]]) as usize;
        if manifest_len == 0 || manifest_len > MANIFEST_MAX {
            return Err(BundleError::ManifestLength(manifest_len));
        }
        let mut signature = [0; 64];
        signature.copy_from_slice(&b[OFF_SIGNATURE..HEADER_LEN]);
        Ok(Header { manifest_len, signature })
    }

    /// Check the signature over `manifest` with `public_key`, then (only then) parse it.
    pub fn verify(&self, manifest: &[u8], public_key: &[u8; 32]) -> Result<Manifest, BundleError> {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(manifest, &self.signature)
            .map_err(|_| BundleError::Signature)?;
        Manifest::parse(manifest)
    }
}

/// The five manifest keys, in their one allowed order.
const KEYS: [&str; 5] = ["board", "version", "min_version", "image_size", "image_sha256"];

impl Manifest {
    /// The manifest's exact bytes (what is signed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let hex: String = self.image_sha256.iter().map(|b| format!("{b:02x}")).collect();
        let values = [self.board.clone(), self.version.to_string(), self.min_version.to_string(), self.image_size.to_string(), hex];
        KEYS.iter().zip(values).map(|(k, v)| format!("{k}={v}\n")).collect::<String>().into_bytes()
    }

    /// Parse a manifest strictly: the five keys once each in order, nothing else.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let bad = |m: &str| BundleError::Manifest(m.to_string());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let body = text.strip_suffix('\n').ok_or_else(|| bad("the last line has no newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != KEYS.len() {
            return Err(bad("it must have exactly five lines"));
        }
        let mut v = [""; 5];
        for (i, (line, key)) in lines.iter().zip(KEYS).enumerate() {
            let (k, value) = line.split_once('=').ok_or_else(|| bad("a line without ="))?;
            if k != key {
                return Err(BundleError::Manifest(format!("line {} is {k:?}, expected {key:?}", i + 1)));
            }
            v[i] = value;
        }
        let board_ok = !v[0].is_empty() && v[0].len() <= 64 && v[0].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !board_ok {
            return Err(bad("board is not a board name"));
        }
        let version = Version::parse(v[1]).ok_or_else(|| bad("version is not MAJOR.MINOR.PATCH"))?;
        let min_version = Version::parse(v[2]).ok_or_else(|| bad("min_version is not MAJOR.MINOR.PATCH"))?;
        let size_ok = !v[3].is_empty() && v[3].len() <= 19 && v[3].bytes().all(|b| b.is_ascii_digit()) && !v[3].starts_with('0');
        let image_size = if size_ok { v[3].parse().ok() } else { None }.ok_or_else(|| bad("image_size is not a positive decimal"))?;
        let image_sha256 = parse_hex32(v[4]).ok_or_else(|| bad("image_sha256 is not 64 lowercase hex digits"))?;
        Ok(Manifest { board: v[0].to_string(), version, min_version, image_size, image_sha256 })
    }

    /// Header + manifest signed with `key` (the first bytes of a bundle, and a slot footer before padding).
    pub fn signed_head(&self, key: &Ed25519KeyPair) -> Vec<u8> {
        let manifest = self.to_bytes();
        let sig = key.sign(&manifest);
        let mut out = Vec::with_capacity(HEADER_LEN + manifest.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(manifest.len() as u16).to_le_bytes());
        out.extend_from_slice(sig.as_ref());
        out.extend_from_slice(&manifest);
        out
    }
}

/// Lowercase hex of 32 bytes (a SHA-256 or an Ed25519 public key).
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Read a bundle head (header + manifest) from the start of `bytes` and verify it: used for slot footers,
/// which hold exactly that. `None` when absent, damaged or not signed by `public_key`.
pub fn read_head(bytes: &[u8], public_key: &[u8; 32]) -> Result<Manifest, BundleError> {
    let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(BundleError::NotABundle)?;
    let header = Header::parse(head)?;
    let manifest = bytes.get(HEADER_LEN..HEADER_LEN + header.manifest_len).ok_or(BundleError::NotABundle)?;
    header.verify(manifest, public_key)
}

/// The public half of a PKCS#8 Ed25519 key.
pub fn public_key_of(key: &Ed25519KeyPair) -> [u8; 32] {
    key.public_key().as_ref().try_into().expect("Ed25519 public keys are 32 bytes")
}

/// What a bundle's stream turns into, step by step (see [`Intake::take`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Taken<'a> {
    /// The bytes went into the header or manifest; nothing to do yet.
    Held,
    /// The manifest's signature verified: check it against the box (board, version, size) before going on.
    Verified(Manifest),
    /// Image bytes (hashed already): write them at the slot's current position.
    Image(&'a [u8]),
}

enum Phase {
    Head,
    Image { manifest: Manifest, hash: Box<ring::digest::Context>, got: u64 },
}

/// The bundle reader: fed the upload in chunks of any size, it verifies the head before handing out a single
/// image byte and hashes the image as it passes. Holds at most [`HEADER_LEN`] + [`MANIFEST_MAX`] bytes.
pub struct Intake {
    public_key: [u8; 32],
    head: Vec<u8>,
    phase: Phase,
}

impl Intake {
    /// A reader that trusts `public_key` only.
    pub fn new(public_key: [u8; 32]) -> Intake {
        Intake { public_key, head: Vec::with_capacity(HEADER_LEN), phase: Phase::Head }
    }

    /// Take bytes from the front of `chunk`: returns how many were used and what they produced. Call again with
    /// the rest until it is empty.
    pub fn take<'a>(&mut self, chunk: &'a [u8]) -> Result<(usize, Taken<'a>), BundleError> {
        match &mut self.phase {
            Phase::Head => self.take_head(chunk),
            Phase::Image { manifest, hash, got } => {
                let left = manifest.image_size - *got;
                if left == 0 {
                    return Err(BundleError::Trailing(chunk.len() as u64));
                }
                let n = (chunk.len() as u64).min(left) as usize;
                hash.update(&chunk[..n]);
                *got += n as u64;
                Ok((n, Taken::Image(&chunk[..n])))
            }
        }
    }

    fn take_head<'a>(&mut self, chunk: &'a [u8]) -> Result<(usize, Taken<'a>), BundleError> {
        let want = if self.head.len() < HEADER_LEN {
            HEADER_LEN
        } else {
            HEADER_LEN + Header::parse(self.head[..HEADER_LEN].try_into().expect("header length"))?.manifest_len
        };
        let n = chunk.len().min(want - self.head.len());
        self.head.extend_from_slice(&chunk[..n]);
        // The magic is known as soon as its bytes are in: a wrong file is named before the rest arrives.
        let seen = self.head.len().min(MAGIC.len());
        if self.head[..seen] != MAGIC[..seen] {
            return Err(BundleError::NotABundle);
        }
        if self.head.len() < want {
            return Ok((n, Taken::Held));
        }
        let header = Header::parse(self.head[..HEADER_LEN].try_into().expect("header length"))?;
        if want == HEADER_LEN {
            return Ok((n, Taken::Held));
        }
        let manifest = header.verify(&self.head[HEADER_LEN..], &self.public_key)?;
        let hash = Box::new(ring::digest::Context::new(&ring::digest::SHA256));
        self.phase = Phase::Image { manifest: manifest.clone(), hash, got: 0 };
        Ok((n, Taken::Verified(manifest)))
    }

    /// The header and manifest bytes as received (verified once [`Intake::manifest`] is Some): a slot's footer.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The verified manifest, once the head is through.
    pub fn manifest(&self) -> Option<&Manifest> {
        match &self.phase {
            Phase::Head => None,
            Phase::Image { manifest, .. } => Some(manifest),
        }
    }

    /// The stream ended: the image must be complete and hash to the signed SHA-256.
    pub fn finish(self) -> Result<Manifest, BundleError> {
        match self.phase {
            Phase::Head => {
                Err(BundleError::Truncated { got: self.head.len() as u64, want: HEADER_LEN as u64 })
            }
            Phase::Image { manifest, hash, got } => {
                if got < manifest.image_size {
                    return Err(BundleError::Truncated { got, want: manifest.image_size });
                }
                if hash.finish().as_ref() != manifest.image_sha256 {
                    return Err(BundleError::Hash);
                }
                Ok(manifest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Ed25519KeyPair {
        let pk8 = include_bytes!("../../../board/keys/dev-update.pk8");
        Ed25519KeyPair::from_pkcs8(pk8).unwrap()
    }

    fn bundle(image: &[u8]) -> (Vec<u8>, Manifest) {
        let m = Manifest {
            board: "qemu-virt-aarch64".into(),
            version: Version(0, 2, 0),
            min_version: Version(0, 1, 0),
            image_size: image.len() as u64,
            image_sha256: ring::digest::digest(&ring::digest::SHA256, image).as_ref().try_into().unwrap(),
        };
        let mut b = m.signed_head(&key());
        b.extend_from_slice(image);
        (b, m)
    }

    /// Feed `bytes` in chunks of `step` and collect what came out.
    fn run(bytes: &[u8], step: usize) -> Result<(Vec<u8>, Manifest), BundleError> {
        let mut intake = Intake::new(public_key_of(&key()));
        let mut image = Vec::new();
        for mut chunk in bytes.chunks(step) {
            while !chunk.is_empty() {
                let (n, out) = intake.take(chunk)?;
                if let Taken::Image(b) = out {
                    image.extend_from_slice(b);
                }
                chunk = &chunk[n..];
            }
        }
        intake.finish().map(|m| (image, m))
    }

    #[test]
    fn a_good_bundle_yields_its_image_in_any_chunking() {
        let image: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let (b, m) = bundle(&image);
        for step in [1, 3, 76, 77, 500, 1 << 20] {
            let (got, mm) = run(&b, step).unwrap();
            assert_eq!(got, image);
            assert_eq!(mm, m);
        }
    }

    #[test]
    fn the_manifest_reads_back_and_is_strict() {
        let (_, m) = bundle(b"x");
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
        let text = String::from_utf8(m.to_bytes()).unwrap();
        for bad in [
            text.replace("board=", "bored="),
            text.replace("version=0.2.0", "version=0.2"),
            text.replace("version=0.2.0", "version=0.02.0"),
            text.replace("image_size=1", "image_size=01"),
            text.clone() + "extra=1\n",
            text.trim_end().to_string(),
            text.replace("qemu-virt-aarch64", "QEMU"),
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_changed_manifest_byte_fails_the_signature_before_parsing() {
        let (mut b, _) = bundle(b"image");
        // Make the manifest unparseable too: the signature error must come first.
        b[HEADER_LEN] = 0xff;
        assert_eq!(run(&b, 1000).unwrap_err(), BundleError::Signature);
    }

    #[test]
    fn another_key_is_refused() {
        let rng = ring::rand::SystemRandom::new();
        let other = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
        let (_, m) = bundle(b"image");
        let mut b = m.signed_head(&other);
        b.extend_from_slice(b"image");
        assert_eq!(run(&b, 1000).unwrap_err(), BundleError::Signature);
    }

    #[test]
    fn changed_image_bytes_truncation_and_trailing_bytes_are_refused() {
        let (b, _) = bundle(b"the slot image");
        let mut changed = b.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(run(&changed, 7).unwrap_err(), BundleError::Hash);
        assert!(matches!(run(&b[..b.len() - 1], 7).unwrap_err(), BundleError::Truncated { .. }));
        assert!(matches!(run(&b[..40], 7).unwrap_err(), BundleError::Truncated { .. }));
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(run(&longer, 7).unwrap_err(), BundleError::Trailing(1));
    }

    #[test]
    fn header_faults_are_named() {
        let (b, _) = bundle(b"i");
        let mut x = b.clone();
        x[0] = b'X';
        assert_eq!(run(&x, 100).unwrap_err(), BundleError::NotABundle);
        let mut x = b.clone();
        x[OFF_FORMAT] = 2;
        assert_eq!(run(&x, 100).unwrap_err(), BundleError::Format(2));
        let mut x = b.clone();
        x[OFF_MANIFEST_LEN..OFF_MANIFEST_LEN + 2].copy_from_slice(&5000u16.to_le_bytes());
        assert_eq!(run(&x, 100).unwrap_err(), BundleError::ManifestLength(5000));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::parse("0.10.0").unwrap() > Version::parse("0.9.9").unwrap());
        assert_eq!(Version::parse("1.2.3").unwrap().to_string(), "1.2.3");
        for bad in ["1.2", "1.2.3.4", "01.2.3", "1.2.x", "", "1..3", "+1.2.3"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }
}
