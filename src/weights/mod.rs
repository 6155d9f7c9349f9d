//! Weights: where the file is ([`hub`]) and what is in it ([`read`]). Nothing here knows about inference: the
//! result is a map of named tensors that a model builder takes its parameters from.
pub mod download;
pub mod hub;

use crate::error::{Error, Result, WeightsError};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// Parameter and buffer tensors by their `state_dict` name, on the CPU.
pub type NamedTensors = HashMap<String, Tensor>;

/// Reads a checkpoint: `.pth`/`.pt` (`torch.save`, zip or legacy container) or `.safetensors`. The format is
/// told from the content, not the extension. The file is memory-mapped and each tensor is copied once, from the
/// page cache into its own memory.
pub fn read(path: &Path) -> Result<NamedTensors> {
    load(path, false).map(|checkpoint| checkpoint.tensors)
}

/// A checkpoint whose tensors may point into the file's memory map, which it keeps.
pub(crate) struct Mapped {
    pub tensors: NamedTensors,
    pub map: Mapping,
}

/// A checkpoint file's private memory map. Whatever was made from [`Mapped::tensors`] must be dropped before
/// it (a struct declares its `Mapping` after the tensors it holds).
pub(crate) struct Mapping(#[allow(dead_code)] memmap2::MmapMut);

/// [`read`] without the copies: where the file lays a tensor out aligned for its type (torch.save's zip
/// container aligns every storage to 64 bytes; safetensors to its types), the tensor is a view of the mapped
/// file. Loading then reads each byte once, and the parameters a network uses as they are (VGG's 400 MB of
/// classifier matrices) take no memory beyond the page cache's. The map is private (copy-on-write): nothing
/// can write to the file through it.
pub(crate) fn read_mapped(path: &Path) -> Result<Mapped> {
    load(path, true)
}

fn load(path: &Path, zero_copy: bool) -> Result<Mapped> {
    let fail = |source: WeightsError| Error::weights(path, source);
    let file = std::fs::File::open(path).map_err(|e| fail(WeightsError::Io(e)))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(fail(WeightsError::IsDirectory));
    }
    // SAFETY: a file truncated by another process while it is mapped can fault (SIGBUS), as with any mmap
    // reader (safetensors, libtorch's own `torch.load(mmap=True)`).
    let map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }.map_err(|e| fail(WeightsError::Io(e)))?;
    let data: &[u8] = &map;
    let tensors = if safe_pth::sniff(data) {
        safe_pth::parse(data).map_err(WeightsError::Pth).and_then(|entries| to_tensors(entries, zero_copy))
    } else if looks_like_safetensors(data) {
        read_safetensors(data, zero_copy)
    } else {
        Err(WeightsError::UnknownFormat)
    };
    Ok(Mapped { tensors: tensors.map_err(fail)?, map: Mapping(map) })
}

/// Makes tensors of what safe_pth parsed (and checked): per storage, a view of the mapped file (`zero_copy`,
/// where aligned) or one copy out of it, and a strided view of that per tensor.
fn to_tensors(entries: Vec<safe_pth::TensorEntry>, zero_copy: bool) -> Result<NamedTensors, WeightsError> {
    use safe_pth::Dtype;
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut out = NamedTensors::new();
    for e in entries {
        let kind = match e.dtype {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            Dtype::I16 => Kind::Int16,
            Dtype::I8 => Kind::Int8,
            Dtype::U8 => Kind::Uint8,
            Dtype::Bool => Kind::Bool,
        };
        let storage = match storages.get(&e.storage_key) {
            Some(t) => t.shallow_clone(),
            None => {
                let numel = (e.storage.len() / e.dtype.size()) as i64;
                let aligned = (e.storage.as_ptr() as usize).is_multiple_of(e.dtype.size());
                let t = if zero_copy && aligned && numel > 0 {
                    // SAFETY: the bytes are `numel` elements of `kind` (safe_pth checked the storage's
                    // length), aligned for it, and they live in the map that `Mapped` keeps with the tensors.
                    unsafe { Tensor::f_from_blob(e.storage.as_ptr(), &[numel], &[1], kind, tch::Device::Cpu) }
                } else {
                    Tensor::f_from_data_size(e.storage, &[numel], kind)
                }
                .map_err(WeightsError::Tensor)?;
                storages.insert(e.storage_key.clone(), t.shallow_clone());
                t
            }
        };
        let view = storage.f_as_strided(&e.size, &e.stride, Some(e.offset)).map_err(WeightsError::Tensor)?;
        out.insert(e.name, view);
    }
    Ok(out)
}

/// Is this a TorchScript archive (`torch.jit.save`): a zip with the module's code and constants?
pub fn is_torchscript(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    let Ok(archive) = zip::ZipArchive::new(std::io::BufReader::new(file)) else { return false };
    let has = |leaf: &str| archive.file_names().any(|n| n.ends_with(leaf));
    has("/constants.pkl") && archive.file_names().any(|n| n.contains("/code/"))
}

fn looks_like_safetensors(data: &[u8]) -> bool {
    // An 8-byte little-endian header length, then a JSON object.
    data.len() >= 9 && data[8] == b'{'
}

/// A safetensors file's tensors, as the same checked entries a `.pth` gives (contiguous views of their bytes).
fn read_safetensors(data: &[u8], zero_copy: bool) -> Result<NamedTensors, WeightsError> {
    use safe_pth::Dtype;
    use safetensors::Dtype as St;
    let st = safetensors::SafeTensors::deserialize(data).map_err(WeightsError::Safetensors)?;
    let mut entries = Vec::new();
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            St::F32 => Dtype::F32,
            St::F64 => Dtype::F64,
            St::F16 => Dtype::F16,
            St::BF16 => Dtype::BF16,
            St::I64 => Dtype::I64,
            St::I32 => Dtype::I32,
            St::I16 => Dtype::I16,
            St::I8 => Dtype::I8,
            St::U8 => Dtype::U8,
            St::BOOL => Dtype::Bool,
            dtype => return Err(WeightsError::UnsupportedDtype { name, dtype }),
        };
        let size: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let mut stride = vec![1i64; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * size[i + 1].max(1);
        }
        entries.push(safe_pth::TensorEntry {
            storage_key: name.clone(),
            name,
            dtype,
            storage: view.data(),
            offset: 0,
            size,
            stride,
        });
    }
    to_tensors(entries, zero_copy)
}
