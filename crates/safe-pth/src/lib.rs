//! `torch.save` files (`.pth`, `.pt`), read without Python and without libtorch's own reader (which cannot read
//! state dicts), and without executing anything: [`pickle`] runs only an allow-listed subset. Both containers:
//! - zip (torch ≥ 1.6): `<name>/data.pkl` plus one stored entry per storage, `<name>/data/<key>`;
//! - legacy (torch < 1.6, and every 2017 torchvision file): pickled magic number, protocol version and
//!   system info, then the pickled object, the pickled list of storage keys, and the raw storages, each an
//!   int64 element count followed by its bytes.
//!
//! Every size in the file is checked against the file's real length before it is used, and every tensor view
//! against its storage, so what [`parse`] returns can be turned into tensors without further checks.
pub mod pickle;

use pickle::{StorageRef, TensorRef, Value};
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

/// Parses a state dict's tensors, in file order. `Err` carries the reason, for a message that names the file.
pub fn parse(data: &[u8]) -> Result<Vec<TensorEntry<'_>>, String> {
    if data.starts_with(b"PK\x03\x04") {
        read_zip(data)
    } else if is_legacy(data) {
        read_legacy(data)
    } else if data.starts_with(b"\x1f\x8b") || data.get(257..262) == Some(b"ustar") {
        Err("it is a tar/gzip archive (torch < 0.2); re-save it with a current torch".into())
    } else {
        Err("it is not a PyTorch checkpoint (neither a zip nor a legacy torch.save file)".into())
    }
}

fn read_zip(data: &[u8]) -> Result<Vec<TensorEntry<'_>>, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| format!("its zip archive is corrupt or truncated ({e}); download the file again"))?;
    let pkl = archive
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_owned)
        .ok_or("its zip archive has no data.pkl, so it is not a torch.save file")?;
    let prefix = pkl.strip_suffix("data.pkl").expect("matched above").to_string();

    if let Some(order) = stored_entry(&mut archive, data, &format!("{prefix}byteorder"))? {
        if order != b"little" {
            return Err("it was saved on a big-endian machine, which is not supported".into());
        }
    }
    let pickle_bytes = stored_entry(&mut archive, data, &pkl)?.expect("found above");
    let (root, _) = pickle::load(pickle_bytes)?;
    let refs = state_dict(&root)?;

    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for (_, tensor) in &refs {
        let s = &tensor.storage;
        if storages.contains_key(&s.key) {
            continue;
        }
        let name = format!("{prefix}data/{}", s.key);
        let bytes = stored_entry(&mut archive, data, &name)?.ok_or_else(|| format!("its archive lacks {name}"))?;
        storages.insert(s.key.clone(), check_storage(s, bytes)?);
    }
    build(refs, &storages)
}

/// The bytes of an uncompressed entry, borrowed from the file itself (torch.save never compresses).
fn stored_entry<'a>(
    archive: &mut zip::ZipArchive<Cursor<&'a [u8]>>,
    data: &'a [u8],
    name: &str,
) -> Result<Option<&'a [u8]>, String> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("its zip entry {name} is corrupt: {e}")),
    };
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(format!("its zip entry {name} is compressed, which torch.save never does"));
    }
    let start = usize::try_from(entry.data_start()).map_err(|_| format!("its zip entry {name} is out of range"))?;
    let len = usize::try_from(entry.size()).map_err(|_| format!("its zip entry {name} is out of range"))?;
    let end = start.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| {
        format!("its zip entry {name} declares {len} bytes beyond the end of the file (truncated or corrupt)")
    })?;
    Ok(Some(&data[start..end]))
}

fn read_legacy(data: &[u8]) -> Result<Vec<TensorEntry<'_>>, String> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Value, String> {
        let (value, used) = pickle::load(&data[pos..]).map_err(|e| format!("{e} (in its {what})"))?;
        pos += used;
        Ok(value)
    };
    next("magic number")?;
    if next("protocol version")?.as_int() != Some(LEGACY_PROTOCOL) {
        return Err(format!("its legacy protocol version is not {LEGACY_PROTOCOL}"));
    }
    let sys_info = next("system info")?;
    let little = sys_info.dict_entries().and_then(|mut e| e.find(|(k, _)| k.as_str() == Some("little_endian")));
    if little.is_some_and(|(_, v)| *v == Value::Bool(false)) {
        return Err("it was saved on a big-endian machine, which is not supported".into());
    }
    let root = next("state dict")?;
    let keys = next("storage key list")?;
    let keys: Vec<String> = keys
        .as_seq()
        .and_then(|k| k.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .ok_or("its storage key list is not a list of strings")?;
    let refs = state_dict(&root)?;

    // Storage descriptions by key, as the pickle declared them.
    let declared: HashMap<&str, &StorageRef> = refs.iter().map(|(_, t)| (t.storage.key.as_str(), &t.storage)).collect();
    let mut storages = HashMap::new();
    for key in &keys {
        let header = data.get(pos..pos + 8).ok_or_else(|| truncated_storage(key))?;
        let numel = i64::from_le_bytes(header.try_into().expect("8 bytes"));
        pos += 8;
        let Some(storage) = declared.get(key.as_str()) else {
            return Err(format!("its storage {key} is not used by any tensor"));
        };
        if numel != storage.numel {
            return Err(format!("its storage {key} holds {numel} elements but the pickle declares {}", storage.numel));
        }
        let len = byte_len(storage).ok_or_else(|| truncated_storage(key))?;
        let bytes = data.get(pos..pos.saturating_add(len)).ok_or_else(|| truncated_storage(key))?;
        pos += len;
        storages.insert(key.clone(), check_storage(storage, bytes)?);
    }
    build(refs, &storages)
}

fn truncated_storage(key: &str) -> String {
    format!("its storage {key} runs past the end of the file (the file is truncated)")
}

fn byte_len(storage: &StorageRef) -> Option<usize> {
    usize::try_from(storage.numel).ok()?.checked_mul(storage.kind.size())
}

/// The state dict's (name, tensor) pairs, in file order. Accepts a bare state dict, or a training checkpoint
/// that keeps it under `state_dict` or `model`.
fn state_dict(root: &Value) -> Result<Vec<(String, TensorRef)>, String> {
    let entries = root.dict_entries().ok_or("it does not hold a state dict (its top-level object is not a dict)")?;
    let mut tensors = Vec::new();
    let mut nested = None;
    for (key, value) in entries {
        match (key.as_str(), value) {
            (Some(name), Value::Tensor(t)) => tensors.push((name.to_string(), (**t).clone())),
            (Some("state_dict" | "model"), inner @ Value::Dict(_)) => nested = Some(inner),
            _ => {}
        }
    }
    match nested {
        Some(inner) if tensors.is_empty() => state_dict(inner),
        _ if tensors.is_empty() => Err("its dict holds no tensors, so it is not a state dict".into()),
        _ => Ok(tensors),
    }
}

fn check_storage<'a>(storage: &StorageRef, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    if Some(bytes.len()) != byte_len(storage) {
        return Err(format!(
            "its storage {} has {} bytes but should have {} elements of {:?} (truncated or corrupt)",
            storage.key,
            bytes.len(),
            storage.numel,
            storage.kind
        ));
    }
    Ok(bytes)
}

fn build<'a>(
    refs: Vec<(String, TensorRef)>,
    storages: &HashMap<String, &'a [u8]>,
) -> Result<Vec<TensorEntry<'a>>, String> {
    refs.into_iter()
        .map(|(name, t)| {
            let storage = storages
                .get(&t.storage.key)
                .ok_or_else(|| format!("its tensor {name} refers to storage {} that the file lacks", t.storage.key))?;
            check_view(&name, &t)?;
            Ok(TensorEntry {
                name,
                dtype: t.storage.kind,
                storage_key: t.storage.key,
                storage,
                offset: t.offset,
                size: t.size,
                stride: t.stride,
            })
        })
        .collect()
}

/// A strided view must stay inside its storage: this is where a hostile size or stride is caught.
fn check_view(name: &str, t: &TensorRef) -> Result<(), String> {
    let bad = || {
        format!(
            "its tensor {name} (size {:?}, stride {:?}, offset {}) reaches past its storage of {} elements",
            t.size, t.stride, t.offset, t.storage.numel
        )
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
