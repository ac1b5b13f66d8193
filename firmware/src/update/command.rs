//! `hearth bundle` (make a key, sign a slot image into a bundle) and `hearth update` (install one from a
//! console). Thin shells over [`super::bundle`] and [`super::install`].

use super::bundle::{Manifest, Version, FOOTER_LEN};
use ring::signature::Ed25519KeyPair;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Default)]
struct BundleArgs {
    new_key: Option<PathBuf>,
    key: Option<PathBuf>,
    board: Option<String>,
    version: Option<String>,
    min_version: Option<String>,
    image: Option<PathBuf>,
    out: Option<PathBuf>,
    footer: Option<PathBuf>,
}

/// `hearth bundle ...`: errors are one line; the caller adds the usage.
pub fn bundle(argv: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;
    let mut a = BundleArgs::default();
    let mut p = lexopt::Parser::from_args(argv);
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        let Long(name) = arg else { return Err(arg.unexpected().to_string()) };
        let name = name.to_string();
        let v = p.value().map_err(e)?;
        let slot = match name.as_str() {
            "new-key" => return set_path(&mut a.new_key, v, &name).and_then(|_| rest_empty(&mut p)).and_then(|_| new_key(a.new_key.as_deref().unwrap())),
            "key" => &mut a.key,
            "image" => &mut a.image,
            "out" => &mut a.out,
            "footer" => &mut a.footer,
            "board" | "version" | "min-version" => {
                let field = match name.as_str() { "board" => &mut a.board, "version" => &mut a.version, _ => &mut a.min_version };
                if field.replace(v.string().map_err(e)?).is_some() {
                    return Err(format!("--{name} is given twice; give it once"));
                }
                continue;
            }
            _ => return Err(format!("unknown option --{name}")),
        };
        set_path(slot, v, &name)?;
    }
    fn need<T>(o: Option<T>, n: &str) -> Result<T, String> {
        o.ok_or_else(|| format!("--{n} is required"))
    }
    let key = need(a.key, "key")?;
    let image = need(a.image, "image")?;
    let out = need(a.out, "out")?;
    let board = need(a.board, "board")?;
    let version = need(a.version, "version")?;
    let version = Version::parse(&version).ok_or_else(|| format!("--version {version:?} is not MAJOR.MINOR.PATCH"))?;
    let min_version = match a.min_version {
        Some(m) => Version::parse(&m).ok_or_else(|| format!("--min-version {m:?} is not MAJOR.MINOR.PATCH"))?,
        None => Version(0, 0, 0),
    };
    if min_version > version {
        return Err(format!("--min-version {min_version} is newer than --version {version}"));
    }
    let key = read_key(&key)?;
    sign_image(&key, board, version, min_version, &image, &out, a.footer.as_deref())
}

fn set_path(slot: &mut Option<PathBuf>, v: OsString, name: &str) -> Result<(), String> {
    if slot.replace(v.into()).is_some() {
        return Err(format!("--{name} is given twice; give it once"));
    }
    Ok(())
}

fn rest_empty(p: &mut lexopt::Parser) -> Result<(), String> {
    match p.next().map_err(|e| e.to_string())? {
        None => Ok(()),
        Some(arg) => Err(format!("--new-key takes no other options ({})", arg.unexpected())),
    }
}

/// Read a PKCS#8 Ed25519 key file (as `--new-key` writes it).
pub fn read_key(path: &Path) -> Result<Ed25519KeyPair, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    Ed25519KeyPair::from_pkcs8(&bytes)
        .map_err(|_| format!("{} is not a PKCS#8 Ed25519 key (make one with `hearth bundle --new-key FILE`)", path.display()))
}

/// Where the public half of the key at `path` goes: `x.pk8` → `x.pub`, else `path` + `.pub`.
pub fn pub_path(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|x| x == "pk8") {
        path.with_extension("pub")
    } else {
        let mut s = path.as_os_str().to_owned();
        s.push(".pub");
        s.into()
    }
}

fn new_key(path: &Path) -> Result<ExitCode, String> {
    let rng = ring::rand::SystemRandom::new();
    let pk8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "the kernel's random source failed".to_string())?;
    let key = Ed25519KeyPair::from_pkcs8(pk8.as_ref()).map_err(|_| "ring made a key it cannot read".to_string())?;
    let public: String = super::bundle::public_key_of(&key).iter().map(|b| format!("{b:02x}")).collect();
    let pub_file = pub_path(path);
    // Never overwrite a key: a lost signing key strands every box that trusts it.
    let create = |p: &Path, bytes: &[u8], mode: u32| -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(p)
            .map_err(|e| format!("cannot create {}: {e} (an existing key is never overwritten)", p.display()))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    create(path, pk8.as_ref(), 0o600)?;
    create(&pub_file, format!("{public}\n").as_bytes(), 0o644)?;
    println!("signing key: {} (keep it secret)\npublic key: {} = {public}", path.display(), pub_file.display());
    Ok(ExitCode::SUCCESS)
}

/// Hash the image, then write header + manifest + image to `out` (and the slot footer to `footer`).
fn sign_image(
    key: &Ed25519KeyPair,
    board: String,
    version: Version,
    min_version: Version,
    image: &Path,
    out: &Path,
    footer: Option<&Path>,
) -> Result<ExitCode, String> {
    let open = || std::fs::File::open(image).map_err(|e| format!("cannot read the image {}: {e}", image.display()));
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut size = 0u64;
    let mut f = open()?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot read the image {}: {e}", image.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    if size == 0 {
        return Err(format!("the image {} is empty", image.display()));
    }
    let image_sha256 = hash.finish().as_ref().try_into().expect("SHA-256 is 32 bytes");
    let manifest = Manifest { board, version, min_version, image_size: size, image_sha256 };
    // Checked the same way the box checks it (board name form, lengths).
    Manifest::parse(&manifest.to_bytes()).map_err(|e| format!("--board: {e}"))?;
    let head = manifest.signed_head(key);
    let write_err = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let mut o = std::fs::File::create(out).map_err(|e| write_err(out, e))?;
    o.write_all(&head).map_err(|e| write_err(out, e))?;
    let copied = std::io::copy(&mut open()?, &mut o).map_err(|e| write_err(out, e))?;
    if copied != size {
        return Err(format!("the image {} changed while it was being signed; sign it again", image.display()));
    }
    o.sync_all().map_err(|e| write_err(out, e))?;
    if let Some(path) = footer {
        let mut padded = head.clone();
        padded.resize(FOOTER_LEN as usize, 0);
        std::fs::write(path, &padded).map_err(|e| write_err(path, e))?;
    }
    println!("{}: board {} version {} (replaces {} and later), image {} bytes", out.display(), manifest.board, version, min_version, size);
    Ok(ExitCode::SUCCESS)
}

/// `hearth update FILE [--allow-downgrade] [--board FILE | --slots FILE]`: install a bundle from a console, as
/// POST /api/v1/system/update does. The slots come from the board file (default /etc/hearth/board.toml) and
/// the kernel command line, or from a `--slots` file as `hearth serve --slots` takes it.
pub fn update(argv: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(argv);
    let e = |e: lexopt::Error| e.to_string();
    let (mut file, mut allow, mut board, mut slots_file) = (None::<PathBuf>, false, None::<PathBuf>, None::<PathBuf>);
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            Long("allow-downgrade") => allow = true,
            Long("board") => board = Some(p.value().map_err(e)?.into()),
            Long("slots") => slots_file = Some(p.value().map_err(e)?.into()),
            Value(v) if file.is_none() => file = Some(v.into()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let file = file.ok_or("give the bundle file: hearth update FILE")?;
    let slots = match slots_file {
        Some(f) => super::Slots::from_host_file(&f)?,
        None => {
            let path = board.unwrap_or_else(|| crate::system::board::BOARD_PATH.into());
            let b = crate::system::board::Board::load(&path).map_err(|e| e.to_string())?;
            let s = b.slots.ok_or_else(|| format!("{}: the board has no [slots]; it cannot install updates", path.display()))?;
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            let booted = super::slot::booted_from_cmdline(&cmdline)
                .ok_or("the kernel command line has no rauc.slot=: this system was not started by the boot script")?;
            let places = super::slot::Places { bootstate: s.bootstate.into(), a: s.a.into(), b: s.b.into() };
            super::Slots::new(b.name, booted, places, std::time::Duration::from_secs(s.confirm_after_secs.into()))
        }
    };
    let mut f = std::fs::File::open(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let turn = slots.turn().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 16];
    let result = slots.install(&turn, allow, || {
        let n = f.read(&mut buf).map_err(|e| super::install::InstallError::Upload(e.to_string()))?;
        Ok((n > 0).then(|| bytes::Bytes::copy_from_slice(&buf[..n])))
    });
    match result {
        Ok(m) => {
            println!("version {} is installed in slot {}; restart into it", m.version, slots.booted.other().name());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("hearth update: {err}");
            Ok(ExitCode::from(1))
        }
    }
}
