//! `torch.save` files (`.pth`, `.pt`), read without Python and without libtorch's own reader (which cannot read
//! state dicts), and without executing anything: [`pickle`] runs only an allow-listed subset. Both containers:
//! - zip (torch ≥ 1.6): `<name>/data.pkl` plus one stored entry per storage, `<name>/data/<key>`;
//! - legacy (torch < 1.6, and every 2017 torchvision file): pickled magic number, protocol version and
//!   system info, then the pickled object, the pickled list of storage keys, and the raw storages, each an
//!   int64 element count followed by its bytes.
//!
//! Every size in the file is checked against the file's real length before it is used, and every tensor view
//! against its storage, so what [`parse`] returns can be turned into tensors without further checks. One
//! [`pickle::Budget`] per file bounds what reading it allocates: its pickles and what [`parse`] returns.
mod error;
pub mod pickle;

pub use error::Error;

use pickle::{Budget, StorageRef, TensorRef, Value};
use std::collections::HashMap;
use std::io::Cursor;

/// Element types of tensor storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }
}

/// One tensor of the state dict: a strided view of a storage's bytes, already checked to lie inside them.
#[derive(Debug, Clone)]
pub struct TensorEntry<'a> {
    pub name: String,
    pub dtype: Dtype,
    /// Identifies the storage: tensors that share one have the same key.
    pub storage_key: String,
    /// The whole storage (little-endian elements), borrowed from the file.
    pub storage: &'a [u8],
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_PROTOCOL: i64 = 1001;

/// Does this look like a `torch.save` file? (Either container.)
pub fn sniff(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || is_legacy(data)
}

fn is_legacy(data: &[u8]) -> bool {
    // PROTO 2, LONG1 with 10 bytes: the magic number 0x1950a86a20f9469cfc6c.
    data.len() > 13 && data[0] == 0x80 && data[2] == 0x8a && data[3] == 10 && data[4..14] == LEGACY_MAGIC
}

/// Parses a state dict's tensors, in file order, within [`pickle::DEFAULT_BUDGET`]. `Err` says why, for a message
/// that names the file.
pub fn parse(data: &[u8]) -> Result<Vec<TensorEntry<'_>>, Error> {
    parse_with_budget(data, pickle::DEFAULT_BUDGET)
}

/// [`parse`] with a budget of `budget_bytes` for the file's pickles and the entries returned.
pub fn parse_with_budget(data: &[u8], budget_bytes: usize) -> Result<Vec<TensorEntry<'_>>, Error> {
    let mut budget = Budget::new(budget_bytes);
    if data.starts_with(b"PK\x03\x04") {
        read_zip(data, &mut budget)
    } else if is_legacy(data) {
        read_legacy(data, &mut budget)
    } else if data.starts_with(b"\x1f\x8b") || data.get(257..262) == Some(b"ustar") {
        Err(Error::NotACheckpoint("it is a tar/gzip archive (torch < 0.2); re-save it with a current torch".into()))
    } else {
        Err(Error::NotACheckpoint("it is not a PyTorch checkpoint (neither a zip nor a legacy torch.save file)".into()))
    }
}

fn read_zip<'a>(data: &'a [u8], budget: &mut Budget) -> Result<Vec<TensorEntry<'a>>, Error> {
    let mut archive = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| {
        Error::malformed(format!("its zip archive is corrupt or truncated ({e}); download the file again"))
    })?;
    let pkl =
        archive.file_names().find(|n| *n == "data.pkl" || n.ends_with("/data.pkl")).map(str::to_owned).ok_or_else(
            || Error::NotACheckpoint("its zip archive has no data.pkl, so it is not a torch.save file".into()),
        )?;
    let prefix = pkl.strip_suffix("data.pkl").expect("matched above").to_string();

    if let Some(order) = stored_entry(&mut archive, data, &format!("{prefix}byteorder"))? {
        if order != b"little" {
            return Err(Error::Unsupported("it was saved on a big-endian machine, which is not supported".into()));
        }
    }
    let pickle_bytes = stored_entry(&mut archive, data, &pkl)?.expect("found above");
    let (root, _) = pickle::load_charged(pickle_bytes, budget)?;
    let refs = state_dict(&root, budget)?;

    let mut storages: HashMap<&str, &[u8]> = HashMap::new();
    for (_, tensor) in &refs {
        let s = &tensor.storage;
        if storages.contains_key(&*s.key) {
            continue;
        }
        let name = format!("{prefix}data/{}", s.key);
        let bytes = stored_entry(&mut archive, data, &name)?
            .ok_or_else(|| Error::malformed(format!("its archive lacks {name}")))?;
        storages.insert(&s.key, check_storage(s, bytes)?);
    }
    build(refs, &storages)
}

/// The bytes of an uncompressed entry, borrowed from the file itself (torch.save never compresses).
fn stored_entry<'a>(
    archive: &mut zip::ZipArchive<Cursor<&'a [u8]>>,
    data: &'a [u8],
    name: &str,
) -> Result<Option<&'a [u8]>, Error> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Error::malformed(format!("its zip entry {name} is corrupt: {e}"))),
    };
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(Error::malformed(format!("its zip entry {name} is compressed, which torch.save never does")));
    }
    let start = usize::try_from(entry.data_start())
        .map_err(|_| Error::malformed(format!("its zip entry {name} is out of range")))?;
    let len =
        usize::try_from(entry.size()).map_err(|_| Error::malformed(format!("its zip entry {name} is out of range")))?;
    let end = start.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| {
        Error::malformed(format!(
            "its zip entry {name} declares {len} bytes beyond the end of the file (truncated or corrupt)"
        ))
    })?;
    Ok(Some(&data[start..end]))
}

fn read_legacy<'a>(data: &'a [u8], budget: &mut Budget) -> Result<Vec<TensorEntry<'a>>, Error> {
    let mut pos = 0;
    let mut next = |part: &'static str, budget: &mut Budget| -> Result<Value, Error> {
        let (value, used) = pickle::load_charged(&data[pos..], budget)
            .map_err(|e| Error::InLegacyPickle { part, source: Box::new(e) })?;
        pos += used;
        Ok(value)
    };
    next("magic number", budget)?;
    if next("protocol version", budget)?.as_int() != Some(LEGACY_PROTOCOL) {
        return Err(Error::malformed(format!("its legacy protocol version is not {LEGACY_PROTOCOL}")));
    }
    let sys_info = next("system info", budget)?;
    let little = sys_info.dict_entries().and_then(|mut e| e.find(|(k, _)| k.as_str() == Some("little_endian")));
    if little.is_some_and(|(_, v)| *v == Value::Bool(false)) {
        return Err(Error::Unsupported("it was saved on a big-endian machine, which is not supported".into()));
    }
    let root = next("state dict", budget)?;
    let keys = next("storage key list", budget)?;
    let keys: Vec<&str> = keys
        .as_seq()
        .and_then(|k| k.iter().map(Value::as_str).collect())
        .ok_or_else(|| Error::malformed("its storage key list is not a list of strings"))?;
    let refs = state_dict(&root, budget)?;

    // Storage descriptions by key, as the pickle declared them.
    let declared: HashMap<&str, &StorageRef> = refs.iter().map(|(_, t)| (&*t.storage.key, &t.storage)).collect();
    let mut storages = HashMap::new();
    for &key in &keys {
        // Looking a key up hashes it: charged, as the memo can repeat one long key many times.
        budget.charge(key.len())?;
        let header = data.get(pos..pos + 8).ok_or_else(|| truncated_storage(key))?;
        let numel = i64::from_le_bytes(header.try_into().expect("8 bytes"));
        pos += 8;
        let Some(storage) = declared.get(key) else {
            return Err(Error::malformed(format!("its storage {key} is not used by any tensor")));
        };
        if numel != storage.numel {
            return Err(Error::malformed(format!(
                "its storage {key} holds {numel} elements but the pickle declares {}",
                storage.numel
            )));
        }
        let len = byte_len(storage).ok_or_else(|| truncated_storage(key))?;
        let bytes = data.get(pos..pos.saturating_add(len)).ok_or_else(|| truncated_storage(key))?;
        pos += len;
        storages.insert(key, check_storage(storage, bytes)?);
    }
    build(refs, &storages)
}

fn truncated_storage(key: &str) -> Error {
    Error::StorageTruncated { key: key.to_string() }
}

fn byte_len(storage: &StorageRef) -> Option<usize> {
    usize::try_from(storage.numel).ok()?.checked_mul(storage.kind.size())
}

/// The state dict's (name, tensor) pairs, in file order, borrowed from `root`. Accepts a bare state dict, or a
/// training checkpoint that keeps it under `state_dict` or `model`. Each pair is charged what its
/// [`TensorEntry`] will take (the memo can make many of them share one long name or storage key).
fn state_dict<'v>(root: &'v Value, budget: &mut Budget) -> Result<Vec<(&'v str, &'v TensorRef)>, Error> {
    let entries = root.dict_entries().ok_or_else(|| {
        Error::NotAStateDict("it does not hold a state dict (its top-level object is not a dict)".into())
    })?;
    let mut tensors = Vec::new();
    let mut nested = None;
    for (key, value) in entries {
        match (key.as_str(), value) {
            (Some(name), Value::Tensor(t)) => {
                let dims = t.size.len() + t.stride.len();
                budget.charge(std::mem::size_of::<TensorEntry>() + name.len() + t.storage.key.len() + 8 * dims)?;
                tensors.push((name, &**t));
            }
            (Some("state_dict" | "model"), inner @ Value::Dict(_)) => nested = Some(inner),
            _ => {}
        }
    }
    match nested {
        Some(inner) if tensors.is_empty() => state_dict(inner, budget),
        _ if tensors.is_empty() => {
            Err(Error::NotAStateDict("its dict holds no tensors, so it is not a state dict".into()))
        }
        _ => Ok(tensors),
    }
}

fn check_storage<'a>(storage: &StorageRef, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
    if Some(bytes.len()) != byte_len(storage) {
        return Err(Error::malformed(format!(
            "its storage {} has {} bytes but should have {} elements of {:?} (truncated or corrupt)",
            storage.key,
            bytes.len(),
            storage.numel,
            storage.kind
        )));
    }
    Ok(bytes)
}

fn build<'a>(refs: Vec<(&str, &TensorRef)>, storages: &HashMap<&str, &'a [u8]>) -> Result<Vec<TensorEntry<'a>>, Error> {
    refs.into_iter()
        .map(|(name, t)| {
            let storage = storages.get(&*t.storage.key).ok_or_else(|| {
                Error::malformed(format!("its tensor {name} refers to storage {} that the file lacks", t.storage.key))
            })?;
            check_view(name, t)?;
            Ok(TensorEntry {
                name: name.to_string(),
                dtype: t.storage.kind,
                storage_key: t.storage.key.to_string(),
                storage,
                offset: t.offset,
                size: t.size.clone(),
                stride: t.stride.clone(),
            })
        })
        .collect()
}

/// A strided view must stay inside its storage: this is where a hostile size or stride is caught.
fn check_view(name: &str, t: &TensorRef) -> Result<(), Error> {
    let bad = || Error::ViewOutOfBounds {
        name: name.to_string(),
        size: t.size.clone(),
        stride: t.stride.clone(),
        offset: t.offset,
        numel: t.storage.numel,
    };
    if t.offset < 0 || t.size.iter().any(|&s| s < 0) || t.stride.iter().any(|&s| s < 0) {
        return Err(bad());
    }
    if t.size.contains(&0) {
        return Ok(());
    }
    let mut last = t.offset;
    for (&size, &stride) in t.size.iter().zip(&t.stride) {
        last = (size - 1).checked_mul(stride).and_then(|d| last.checked_add(d)).ok_or_else(bad)?;
    }
    if last >= t.storage.numel {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    fn text(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }

    /// The pickle of one float tensor of storage "0", rebuilt with `_rebuild_tensor_v2` (without a dict).
    fn tensor(numel: u16, offset: u8, size: [u8; 2], stride: [u8; 2]) -> Vec<u8> {
        keyed_tensor("0", numel, offset, size, stride)
    }

    fn keyed_tensor(key: &str, numel: u16, offset: u8, size: [u8; 2], stride: [u8; 2]) -> Vec<u8> {
        let mut p = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
        text(&mut p, "storage");
        p.extend(b"ctorch\nFloatStorage\n");
        text(&mut p, key);
        text(&mut p, "cpu");
        p.push(b'M');
        p.extend(numel.to_le_bytes());
        p.extend([
            b't', b'Q', b'K', offset, b'K', size[0], b'K', size[1], 0x86, b'K', stride[0], b'K', stride[1], 0x86,
        ]);
        p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
        p
    }

    /// A state dict `{"w": tensor}` of one tensor viewing storage "0" of `numel` floats.
    fn one_tensor(numel: u16, offset: u8, size: [u8; 2], stride: [u8; 2]) -> Vec<u8> {
        let mut p = b"\x80\x02}(".to_vec();
        text(&mut p, "w");
        p.extend(tensor(numel, offset, size, stride));
        p.extend(b"u.");
        p
    }

    /// A legacy container: magic number, protocol, system info, `state_dict`, the key list, the storages.
    fn legacy(state_dict: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
        let mut f = b"\x80\x02\x8a\x0a".to_vec();
        f.extend(LEGACY_MAGIC);
        f.extend(b".\x80\x02M\xe9\x03.\x80\x02}(");
        text(&mut f, "little_endian");
        f.extend(b"\x88u.");
        f.extend(state_dict);
        f.extend(b"\x80\x02](");
        for (key, _) in storages {
            text(&mut f, key);
        }
        f.extend(b"e.");
        for (_, bytes) in storages {
            f.extend((bytes.len() as i64 / 4).to_le_bytes());
            f.extend(*bytes);
        }
        f
    }

    /// A zip container, with stored entries as torch.save writes them.
    fn zip(state_dict: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let mut entry = |name: &str, bytes: &[u8]| {
            w.start_file(format!("archive/{name}"), stored).unwrap();
            w.write_all(bytes).unwrap();
        };
        entry("data.pkl", state_dict);
        entry("byteorder", b"little");
        for (key, bytes) in storages {
            entry(&format!("data/{key}"), bytes);
        }
        w.finish().unwrap().into_inner()
    }

    fn both(state_dict: &[u8], storages: &[(&str, &[u8])]) -> [(&'static str, Vec<u8>); 2] {
        [("zip", zip(state_dict, storages)), ("legacy", legacy(state_dict, storages))]
    }

    const FOUR_FLOATS: [u8; 16] = [0; 16];
    /// What a bomb may take to be refused here, in a debug build on a busy machine; copying what it asks for
    /// would need 200 GB. (tests/pth_bombs.rs holds the CLI, in release, to 2 s.)
    const SECONDS: f64 = 10.0;

    #[test]
    fn reads_a_view_inside_its_storage_from_both_containers() {
        for (container, file) in both(&one_tensor(4, 0, [2, 2], [2, 1]), &[("0", &FOUR_FLOATS)]) {
            let tensors = parse(&file).unwrap_or_else(|e| panic!("{container}: {e}"));
            assert_eq!(tensors.len(), 1);
            let t = &tensors[0];
            assert_eq!((t.name.as_str(), t.storage_key.as_str(), t.dtype), ("w", "0", Dtype::F32));
            assert_eq!((t.offset, &t.size[..], &t.stride[..], t.storage.len()), (0, &[2, 2][..], &[2, 1][..], 16));
        }
    }

    #[test]
    fn refuses_a_view_that_reaches_past_its_storage() {
        // 2×2 floats in a storage of 4: a row stride of 3, or an offset of 1, reaches element 4 or 5.
        for (offset, stride) in [(0, [3, 1]), (0, [1, 4]), (1, [2, 1]), (4, [0, 0])] {
            for (container, file) in both(&one_tensor(4, offset, [2, 2], stride), &[("0", &FOUR_FLOATS)]) {
                let err = parse(&file).unwrap_err();
                assert!(matches!(&err, Error::ViewOutOfBounds { name, numel: 4, .. } if name == "w"), "{err:?}");
                assert_eq!(
                    err.to_string(),
                    format!(
                        "its tensor w (size [2, 2], stride {stride:?}, offset {offset}) reaches past its storage \
                         of 4 elements"
                    ),
                    "{container}"
                );
            }
        }
        // The last element exactly, a broadcast (stride 0), and an empty tensor whatever its stride are fine.
        for (offset, size, stride) in [(1, [1, 3], [9, 1]), (3, [2, 2], [0, 0]), (9, [0, 2], [200, 200])] {
            for (container, file) in both(&one_tensor(4, offset, size, stride), &[("0", &FOUR_FLOATS)]) {
                assert!(parse(&file).is_ok(), "{container}: {offset} {size:?} {stride:?}");
            }
        }
    }

    /// PROTO 2, a 1 MiB BINUNICODE memoized as entry 0, `op` `reps` times, STOP: what the old reader turned into
    /// `reps` copies of the string.
    fn copy_bomb(op: &[u8], reps: usize) -> Vec<u8> {
        let mut p = b"\x80\x02X".to_vec();
        p.extend((1u32 << 20).to_le_bytes());
        p.extend(std::iter::repeat_n(b'a', 1 << 20));
        p.extend(b"q\x00");
        p.extend(op.repeat(reps));
        p.push(b'.');
        p
    }

    #[test]
    fn memo_and_dup_bombs_are_refused_quickly_in_both_containers() {
        for op in [&b"h\x00"[..], b"2"] {
            for (container, file) in both(&copy_bomb(op, 200_000), &[]) {
                let start = Instant::now();
                let err = parse(&file).unwrap_err().to_string();
                assert_eq!(err, "it does not hold a state dict (its top-level object is not a dict)", "{container}");
                assert!(start.elapsed().as_secs_f64() < SECONDS, "{container} {op:?}: {:?}", start.elapsed());
            }
        }
    }

    /// `{name: t, name: t, …}`: a name and a tensor of storage `key`, memoized, set `reps` times.
    fn repeated_entries(name: &str, key: &str, reps: usize) -> Vec<u8> {
        let mut p = b"\x80\x02}(".to_vec();
        text(&mut p, name);
        p.extend(b"q\x00");
        p.extend(keyed_tensor(key, 4, 0, [2, 2], [2, 1]));
        p.extend(b"q\x01");
        p.extend(b"h\x00h\x01".repeat(reps));
        p.extend(b"u.");
        p
    }

    #[test]
    fn many_tensors_sharing_one_long_name_or_key_are_refused() {
        // What parse returns holds a copy of the name and of the storage key per entry: 200,000 entries of 1 MiB.
        let long = "n".repeat(1 << 20);
        for (name, key) in [(long.as_str(), "0"), ("w", long.as_str())] {
            // (A zip entry's name has at most 65,535 bytes: the archive names storage "0", refused first anyway.)
            for (container, file) in both(&repeated_entries(name, key, 200_000), &[("0", &FOUR_FLOATS)]) {
                let start = Instant::now();
                let err = parse(&file).unwrap_err();
                assert!(matches!(err.innermost(), Error::OverBudget { limit: pickle::DEFAULT_BUDGET }), "{err:?}");
                let err = err.to_string();
                assert!(err.starts_with("its pickle needs more than 32 MiB to read"), "{container}: {err}");
                assert!(start.elapsed().as_secs_f64() < SECONDS, "{container}: {:?}", start.elapsed());
            }
        }
        // A few entries read; a small budget refuses them too.
        for (container, file) in both(&repeated_entries(&long, "0", 3), &[("0", &FOUR_FLOATS)]) {
            assert_eq!(parse(&file).map(|t| t.len()).unwrap_or_else(|e| panic!("{container}: {e}")), 4);
            let err = parse_with_budget(&file, 3 << 20).unwrap_err().to_string();
            assert!(err.starts_with("its pickle needs more than 3 MiB to read"), "{container}: {err}");
        }
    }

    #[test]
    fn a_budget_is_shared_by_the_pickles_of_a_legacy_file() {
        let state_dict = one_tensor(4, 0, [2, 2], [2, 1]);
        let file = legacy(&state_dict, &[("0", &FOUR_FLOATS)]);
        let mut budget = Budget::new(usize::MAX);
        read_legacy(&file, &mut budget).unwrap();
        let need = budget.used();
        let mut alone = Budget::new(usize::MAX);
        pickle::load_charged(&state_dict, &mut alone).unwrap();
        assert!(need > alone.used() + 200, "{need} vs {}", alone.used());
        assert!(parse_with_budget(&file, need).is_ok());
        let err = parse_with_budget(&file, need - 1).unwrap_err().to_string();
        assert!(err.starts_with("its pickle needs more than 2 KiB to read"), "{need}: {err}");
    }

    #[test]
    fn errors_say_what_kind_of_failure_and_keep_their_messages() {
        let err = parse(b"hello").unwrap_err();
        assert!(matches!(err, Error::NotACheckpoint(_)), "{err:?}");
        assert_eq!(err.to_string(), "it is not a PyTorch checkpoint (neither a zip nor a legacy torch.save file)");

        // A legacy file whose state dict pickle is cut short: the pickle's error, and which pickle it was.
        let file = legacy(&one_tensor(4, 0, [2, 2], [2, 1]), &[("0", &FOUR_FLOATS)]);
        // Magic number, protocol version and system info: what precedes the state dict (an empty key list is 6 bytes).
        let start = legacy(b"", &[]).len() - 6;
        let err = parse(&file[..start + 10]).unwrap_err();
        assert_eq!(*err.innermost(), Error::Truncated { at: 10 });
        assert!(!err.is_hostile());
        let cause = std::error::Error::source(&err).expect("the pickle's error");
        assert_eq!(err.to_string(), format!("{cause} (in its state dict)"));
        assert_eq!(
            err.to_string(),
            "its pickle is truncated at byte 10 (the file is incomplete or corrupt) (in its state dict)"
        );

        // Storage past the end of a legacy file.
        let err = parse(&file[..file.len() - 1]).unwrap_err();
        assert_eq!(err, Error::StorageTruncated { key: "0".into() });
        assert_eq!(err.to_string(), "its storage 0 runs past the end of the file (the file is truncated)");
    }
}
