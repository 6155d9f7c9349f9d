//! A pickle reader that executes nothing: just enough of the pickle machine to read a PyTorch state dict.
//!
//! `torch.load` without `weights_only` runs whatever callable a file names (`os.system`, `builtins.eval`, …).
//! Here a GLOBAL is looked up in a short allow-list of the names a state dict needs (`OrderedDict`, the tensor
//! rebuild functions, storage types); anything else is refused with an error naming it. REDUCE only "calls"
//! those entries, and does so by building plain data. Every length is checked against the input before anything
//! is allocated and nesting is bounded, so no input can make it recurse deeply or panic.
//!
//! Memory is bounded by a [`Budget`]: strings, bytes and containers are shared (`Rc`), so the memo (BINGET),
//! DUP and REDUCE copy a pointer, never a payload, and every allocation is charged as it is made (each value
//! pushed, MARK and memo entry, each string's and big int's bytes, each container's items, and the full length
//! of a container that is cloned because it is shared). The charges only add up, so they bound the work done as well as the memory
//! held: a pickle that would need more than the budget is refused, whatever the opcodes it does it with.
use crate::{Dtype, Error};
use std::collections::HashMap;
use std::rc::Rc;

/// How deep containers may nest. A state dict needs 4 or 5 levels.
const MAX_DEPTH: u32 = 64;

/// The default [`Budget`], in bytes. Reading a state dict as torch.save writes it is charged about 2 KiB per
/// tensor: 2.7 MiB for DenseNet-201 (1,207 tensors), 20 MiB for 10,000. What the budget allows takes at most
/// about twice that in memory (a `Vec` doubles as it grows).
pub const DEFAULT_BUDGET: usize = 32 << 20;

/// What reading a file may allocate, in bytes, charged cumulatively: what is freed is not given back, so the
/// total also bounds the time spent.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { limit, used: 0 }
    }

    /// Bytes charged so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Charges `bytes`, or refuses once the total exceeds the limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(Error::OverBudget { limit: self.limit });
        }
        Ok(())
    }
}

/// What one value on the stack, in a container or in the memo takes.
const VALUE: usize = std::mem::size_of::<Value>();
/// What an `Rc` allocation adds to its payload (the two reference counts).
const RC: usize = 2 * std::mem::size_of::<usize>();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

impl Global {
    fn lookup(module: &str, name: &str) -> Result<Global, Error> {
        let global = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", storage) => match storage_kind(storage) {
                Some(kind) => Global::Storage(kind),
                None => return Err(refusal(module, name)),
            },
            _ => return Err(refusal(module, name)),
        };
        Ok(global)
    }
}

fn refusal(module: &str, name: &str) -> Error {
    Error::Refused { module: module.to_string(), name: name.to_string() }
}

fn storage_kind(name: &str) -> Option<Dtype> {
    Some(match name {
        "FloatStorage" => Dtype::F32,
        "DoubleStorage" => Dtype::F64,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" => Dtype::U8,
        "BoolStorage" => Dtype::Bool,
        _ => return None,
    })
}

/// A storage named by a persistent id: `('storage', type, key, location, numel[, view])`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub key: Rc<str>,
    pub kind: Dtype,
    pub numel: i64,
}

/// A tensor as `_rebuild_tensor(_v2)` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub items: Vec<Value>,
    depth: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Container>),
    List(Rc<Container>),
    /// Keys and values alternate in `items`, in insertion order.
    Dict(Rc<Container>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(c) | Value::List(c) | Value::Dict(c) => c.depth,
            _ => 0,
        }
    }

    fn container(items: Vec<Value>) -> Result<Rc<Container>, Error> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(Error::malformed(format!("its pickle nests containers deeper than {MAX_DEPTH} levels")));
        }
        Ok(Rc::new(Container { items, depth }))
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(c) | Value::List(c) => Some(&c.items),
            _ => None,
        }
    }

    /// The (key, value) pairs of a dict.
    pub fn dict_entries(&self) -> Option<impl Iterator<Item = (&Value, &Value)>> {
        match self {
            Value::Dict(c) => Some(c.items.chunks_exact(2).map(|kv| (&kv[0], &kv[1]))),
            _ => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Reads one pickle from the start of `data`, within the [`DEFAULT_BUDGET`]. Returns the value and the number of
/// bytes it took.
pub fn load(data: &[u8]) -> Result<(Value, usize), Error> {
    load_with_budget(data, DEFAULT_BUDGET)
}

/// [`load`] with a budget of `budget_bytes`.
pub fn load_with_budget(data: &[u8], budget_bytes: usize) -> Result<(Value, usize), Error> {
    load_charged(data, &mut Budget::new(budget_bytes))
}

/// [`load`], charging `budget`, which several pickles of one file share.
pub fn load_charged(data: &[u8], budget: &mut Budget) -> Result<(Value, usize), Error> {
    let mut machine = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), budget };
    let value = machine.run()?;
    Ok((value, machine.pos))
}

struct Machine<'a, 'b> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    budget: &'b mut Budget,
}

type R<T> = Result<T, Error>;

impl<'a> Machine<'a, '_> {
    fn truncated(&self) -> Error {
        Error::Truncated { at: self.pos }
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| self.truncated())?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> R<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn len_u32(&mut self) -> R<usize> {
        Ok(u32::from_le_bytes(self.le()?) as usize)
    }

    fn len_u64(&mut self) -> R<usize> {
        usize::try_from(u64::from_le_bytes(self.le()?)).map_err(|_| self.truncated())
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.truncated())?;
        let line = std::str::from_utf8(&rest[..end])
            .map_err(|_| Error::malformed("its pickle has a non-UTF-8 global name"))?;
        self.pos += end + 1;
        Ok(line)
    }

    fn string(&mut self, n: usize) -> R<Value> {
        let bytes = self.take(n)?;
        let s =
            std::str::from_utf8(bytes).map_err(|_| Error::malformed("its pickle has a string that is not UTF-8"))?;
        self.budget.charge(RC + s.len())?;
        Ok(Value::Str(s.into()))
    }

    /// Every push goes through here: it is charged one stack slot.
    fn push(&mut self, value: Value) -> R<()> {
        self.budget.charge(VALUE)?;
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> R<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(Error::malformed(format!("its pickle is malformed (stack underflow at byte {})", self.pos)));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&mut self) -> R<&mut Value> {
        let at = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| Error::malformed(format!("its pickle is malformed (empty stack at byte {at})")))
    }

    fn pop_mark(&mut self) -> R<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Error::malformed(format!("its pickle is malformed (no MARK at byte {})", self.pos)))?;
        Ok(self.stack.split_off(mark))
    }

    /// Pushes a new container of `items`, charged for their slots.
    fn push_container(&mut self, kind: fn(Rc<Container>) -> Value, items: Vec<Value>) -> R<()> {
        self.budget.charge(RC + std::mem::size_of::<Container>() + items.len() * VALUE)?;
        let c = Value::container(items)?;
        self.push(kind(c))
    }

    /// Adds items to the list or dict on top of the stack.
    fn extend_top(&mut self, items: Vec<Value>, dict: bool) -> R<()> {
        if dict && !items.len().is_multiple_of(2) {
            return Err(Error::malformed("its pickle is malformed (odd SETITEMS)"));
        }
        let pos = self.pos;
        let Some(target) = self.stack.last_mut() else {
            return Err(Error::malformed(format!("its pickle is malformed (empty stack at byte {pos})")));
        };
        let c = match (target, dict) {
            (Value::Dict(c), true) | (Value::List(c), false) => c,
            (other, _) => {
                return Err(Error::malformed(format!("its pickle adds items to {} at byte {pos}", other.describe())));
            }
        };
        // A container the memo or another value also holds is copied before it changes: that copy is charged in
        // full, the new items in any case.
        let copied =
            if Rc::get_mut(c).is_none() { RC + std::mem::size_of::<Container>() + c.items.len() * VALUE } else { 0 };
        self.budget.charge(copied + items.len() * VALUE)?;
        let c = Rc::make_mut(c);
        let depth = items.iter().map(Value::depth).max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(Error::malformed(format!("its pickle nests containers deeper than {MAX_DEPTH} levels")));
        }
        c.depth = c.depth.max(depth);
        c.items.extend(items);
        Ok(())
    }

    /// Pushes a memo entry: a clone of a `Value`, which shares its payload.
    fn memo_get(&mut self, index: u32) -> R<()> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| Error::malformed(format!("its pickle refers to a missing memo entry {index}")))?;
        self.push(value)
    }

    fn memo_put(&mut self, index: u32) -> R<()> {
        let value =
            self.stack.last().cloned().ok_or_else(|| Error::malformed("its pickle memoizes from an empty stack"))?;
        self.budget.charge(std::mem::size_of::<(u32, Value)>() + std::mem::size_of::<u64>())?;
        self.memo.insert(index, value);
        Ok(())
    }

    fn run(&mut self) -> R<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(Error::malformed(format!("its pickle uses protocol {proto}; at most 5 is known")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => {
                    self.budget.charge(std::mem::size_of::<usize>())?;
                    self.marks.push(self.stack.len());
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64))?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.u8()? as usize } else { self.len_u32()? };
                    let bytes = self.take(n)?;
                    self.budget.charge(RC + bytes.len())?;
                    self.push(long(bytes))?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v))?;
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.string(n)?;
                    self.push(s)?;
                }
                // Python 2 str (BINSTRING, SHORT_BINSTRING) and bytes (BINBYTES, SHORT_BINBYTES, BINBYTES8).
                b'T' | b'U' | b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'U' | b'C' => self.u8()? as usize,
                        0x8e => self.len_u64()?,
                        _ => self.len_u32()?,
                    };
                    let bytes = self.take(n)?;
                    self.budget.charge(RC + bytes.len())?;
                    let value = match (op, std::str::from_utf8(bytes)) {
                        (b'T' | b'U', Ok(s)) => Value::Str(s.into()),
                        _ => Value::Bytes(bytes.into()),
                    };
                    self.push(value)?;
                }
                b')' => self.push_container(Value::Tuple, Vec::new())?,
                b']' => self.push_container(Value::List, Vec::new())?,
                b'}' => self.push_container(Value::Dict, Vec::new())?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_container(Value::Tuple, items)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_container(Value::List, items)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return Err(Error::malformed("its pickle is malformed (odd DICT)"));
                    }
                    self.push_container(Value::Dict, items)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(Error::malformed(format!(
                            "its pickle is malformed (stack underflow at byte {})",
                            self.pos
                        )));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_container(Value::Tuple, items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(Global::lookup(module, name)?))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.as_str(), name.as_str()) {
                        (Some(m), Some(n)) => self.push(Value::Global(Global::lookup(m, n)?))?,
                        _ => return Err(Error::malformed("its pickle has a malformed STACK_GLOBAL")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(&callable, &args, self.budget)?;
                    self.push(value)?;
                }
                b'b' => {
                    // BUILD sets attributes: a state dict's `_metadata`, a Parameter's extras. Nothing that
                    // changes tensor data; dropped, and refused on anything else.
                    let _state = self.pop()?;
                    match self.top()? {
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => {
                            return Err(Error::malformed(format!("its pickle sets state on {}", other.describe())))
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent_load(&pid, self.budget)?;
                    self.push(storage)?;
                }
                other => {
                    return Err(Error::malformed(format!(
                        "its pickle uses opcode 0x{other:02x} at byte {}, which a state dict does not need",
                        self.pos - 1
                    )));
                }
            }
        }
    }
}

fn long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt(bytes.into());
    }
    let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(buf))
}

fn ints(value: &Value, what: &str) -> R<Vec<i64>> {
    value
        .as_seq()
        .and_then(|items| items.iter().map(Value::as_int).collect::<Option<Vec<_>>>())
        .ok_or_else(|| Error::malformed(format!("its tensor {what} is not a tuple of ints")))
}

/// What REDUCE may do: only the allow-listed constructors, each building plain data, charged to `budget`.
fn reduce(callable: &Value, args: &Value, budget: &mut Budget) -> R<Value> {
    let Value::Global(global) = callable else {
        return Err(Error::malformed(format!("its pickle calls {}, not an allowed class", callable.describe())));
    };
    let args = args.as_seq().ok_or_else(|| Error::malformed("its pickle calls a class with non-tuple arguments"))?;
    match global {
        Global::OrderedDict if args.is_empty() => {
            budget.charge(RC + std::mem::size_of::<Container>())?;
            Ok(Value::Dict(Value::container(Vec::new())?))
        }
        Global::OrderedDict => Err(Error::malformed("its pickle builds an OrderedDict from arguments")),
        Global::RebuildTensor | Global::RebuildTensorV2 => {
            let [storage, offset, size, stride, ..] = args else {
                return Err(Error::malformed("its pickle rebuilds a tensor with too few arguments"));
            };
            let Value::Storage(storage) = storage else {
                return Err(Error::malformed(format!("its pickle rebuilds a tensor from {}", storage.describe())));
            };
            let offset = offset.as_int().ok_or_else(|| Error::malformed("its tensor offset is not an int"))?;
            let dims = |v: &Value| v.as_seq().map_or(0, <[Value]>::len);
            let ints_len = dims(size).saturating_add(dims(stride));
            budget.charge(RC + std::mem::size_of::<TensorRef>() + ints_len.saturating_mul(8))?;
            let size = ints(size, "size")?;
            let stride = ints(stride, "stride")?;
            if size.len() != stride.len() {
                return Err(Error::malformed("its tensor has sizes and strides of different lengths"));
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage: (**storage).clone(), offset, size, stride })))
        }
        Global::RebuildParameter => match args.first() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor.clone()),
            _ => Err(Error::malformed("its pickle rebuilds a parameter from something other than a tensor")),
        },
        Global::Storage(_) => Err(Error::malformed("its pickle calls a storage type")),
    }
}

/// `('storage', storage_type, key, location, numel[, view_metadata])`, the persistent id of both containers.
fn persistent_load(pid: &Value, budget: &mut Budget) -> R<Value> {
    let bad = || Error::malformed("its pickle has a persistent id that is not a tensor storage");
    let items = pid.as_seq().ok_or_else(bad)?;
    let [tag, ty, key, _location, numel, rest @ ..] = items else {
        return Err(bad());
    };
    if tag.as_str() != Some("storage") {
        return Err(bad());
    }
    if rest.first().is_some_and(|view| *view != Value::None) {
        return Err(Error::Unsupported(
            "it uses storage views (a pre-1.0 feature that this reader does not support)".into(),
        ));
    }
    let Value::Global(Global::Storage(kind)) = ty else {
        return Err(bad());
    };
    let Value::Str(key) = key else {
        return Err(bad());
    };
    let numel = numel.as_int().filter(|&n| n >= 0).ok_or_else(bad)?;
    budget.charge(RC + std::mem::size_of::<StorageRef>())?;
    Ok(Value::Storage(Rc::new(StorageRef { key: key.clone(), kind: *kind, numel })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_os_system_before_calling_anything() {
        // cos\nsystem\n (S'touch pwned' tR.
        let evil = b"cos\nsystem\n(X\x0b\x00\x00\x00touch pwnedtR.";
        let err = load(evil).unwrap_err();
        assert_eq!(err, Error::Refused { module: "os".into(), name: "system".into() });
        assert!(err.is_hostile());
        let err = err.to_string();
        assert!(
            err.starts_with("refused to load: its pickle asks for the Python callable `os.system`, which"),
            "{err}"
        );
    }

    #[test]
    fn refuses_builtins_eval_via_stack_global() {
        let evil = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R.";
        let err = load(evil).unwrap_err().to_string();
        assert!(err.contains("`builtins.eval`"), "{err}");
    }

    #[test]
    fn reads_a_dict_and_stops_at_truncation() {
        let ok = b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x05X\x01\x00\x00\x00bJ\xff\xff\xff\xffu.";
        let (v, used) = load(ok).unwrap();
        assert_eq!(used, ok.len());
        let entries: Vec<_> = v.dict_entries().unwrap().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].1.as_int(), Some(-1));
        for cut in 0..ok.len() {
            assert!(load(&ok[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bounds_nesting_and_huge_lengths() {
        let mut deep = b"\x80\x02".to_vec();
        deep.extend(std::iter::repeat_n(b']', 1));
        deep.extend(std::iter::repeat_n(0x85, 200));
        deep.push(b'.');
        assert!(load(&deep).unwrap_err().to_string().contains("deeper"));
        let huge = b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f";
        assert_eq!(load(huge).unwrap_err(), Error::Truncated { at: 11 });
        assert!(load(huge).unwrap_err().to_string().contains("truncated"));
    }

    /// PROTO 2, a `len`-byte BINUNICODE memoized as entry 0, `body`, STOP.
    fn with_long_string(len: usize, body: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02X".to_vec();
        p.extend((len as u32).to_le_bytes());
        p.extend(std::iter::repeat_n(b'a', len));
        p.extend(b"q\x00");
        p.extend(body);
        p.push(b'.');
        p
    }

    /// What reading `pickle` is charged, with the default budget.
    fn charged(pickle: &[u8]) -> usize {
        let mut budget = Budget::new(DEFAULT_BUDGET);
        load_charged(pickle, &mut budget).unwrap();
        budget.used()
    }

    #[test]
    fn memo_and_dup_share_a_string_instead_of_copying_it() {
        const MIB: usize = 1 << 20;
        for op in [&b"h\x00"[..], b"2"] {
            let pickle = with_long_string(MIB, &op.repeat(200_000));
            let (value, _) = load(&pickle).unwrap();
            assert_eq!(value.as_str().map(str::len), Some(MIB));
            // Each BINGET or DUP is charged one stack slot, whatever the length of what it pushes.
            let slots = charged(&pickle) - charged(&with_long_string(MIB, &op.repeat(100_000)));
            assert_eq!(slots, 100_000 * VALUE, "{op:?}");
            assert!(charged(&pickle) < MIB + 200_010 * VALUE);
        }
        assert_eq!(VALUE, 24, "a value is a tag and a pointer or a scalar");
    }

    /// PROTO 2, a list of `len` ints memoized as entry 0, then `loops` times: BINGET 0, BININT1 1, APPEND, POP.
    /// What is left is the memoized list.
    fn appends_to_a_shared_list(len: usize, loops: usize) -> Vec<u8> {
        let mut p = b"\x80\x02](".to_vec();
        p.extend(b"K\x07".repeat(len));
        p.extend(b"eq\x00");
        p.extend(b"h\x00K\x01a0".repeat(loops));
        p.push(b'.');
        p
    }

    #[test]
    fn the_budget_refuses_copying_a_shared_list_again_and_again() {
        // Every APPEND copies the memoized list before changing it: 1,000 slots charged per 5 bytes of pickle.
        let bomb = appends_to_a_shared_list(1000, 10_000);
        let err = load_with_budget(&bomb, 64 << 10).unwrap_err();
        assert_eq!(err, Error::OverBudget { limit: 64 << 10 });
        let err = err.to_string();
        assert_eq!(
            err,
            "its pickle needs more than 64 KiB to read, far more than any state dict (the file may be malicious)"
        );
        let err = load(&bomb).unwrap_err().to_string();
        assert!(err.contains("needs more than 32 MiB to read"), "{err}");
        // A few copies are fine.
        let (list, _) = load(&appends_to_a_shared_list(1000, 10)).unwrap();
        assert_eq!(list.as_seq().unwrap().len(), 1000);
    }

    #[test]
    fn the_budget_counts_what_every_opcode_allocates() {
        let dict = b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x05X\x01\x00\x00\x00bJ\xff\xff\xff\xffu.";
        let need = charged(dict);
        assert!(load_with_budget(dict, need).is_ok());
        let err = load_with_budget(dict, need - 1).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "its pickle needs more than {} bytes to read, far more than any state dict (the file may be malicious)",
                need - 1
            )
        );
        // Long strings, bytes and big ints are charged their length.
        for op in [&b"X"[..], b"B", b"T", b"\x8b"] {
            let mut p = b"\x80\x02".to_vec();
            p.extend(op);
            p.extend(100_000u32.to_le_bytes());
            p.extend(std::iter::repeat_n(b'7', 100_000));
            p.push(b'.');
            assert!(charged(&p) > 100_000, "{op:?}");
            assert!(load_with_budget(&p, 99_999).is_err(), "{op:?}");
        }
    }

    /// A state dict's pickle as torch.save (protocol 2) writes it: `n` float tensors of two dimensions, each in
    /// its own storage, with names of about 30 characters.
    pub(crate) fn state_dict_pickle(n: usize) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
        let mut memo = 2u32;
        let mut put = |p: &mut Vec<u8>| {
            p.push(b'r');
            p.extend(memo.to_le_bytes());
            memo += 1;
        };
        let text = |p: &mut Vec<u8>, s: &str| {
            p.push(b'X');
            p.extend((s.len() as u32).to_le_bytes());
            p.extend(s.as_bytes());
        };
        for i in 0..n {
            text(&mut p, &format!("features.{i}.block.conv.weight"));
            put(&mut p);
            if i == 0 {
                p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02");
            } else {
                p.extend(b"h\x02");
            }
            p.extend(b"((");
            text(&mut p, "storage");
            put(&mut p);
            p.extend(b"ctorch\nFloatStorage\n");
            put(&mut p);
            text(&mut p, &i.to_string());
            put(&mut p);
            text(&mut p, "cpu");
            put(&mut p);
            p.extend(b"M\x00\x01tQK\x00K\x10K\x10\x86K\x10K\x01\x86\x89h\x00)Rt");
            put(&mut p);
            p.push(b'R');
            put(&mut p);
        }
        p.extend(b"u}X\x07\x00\x00\x00versionK\x01sb.");
        p
    }

    #[test]
    fn a_state_dict_of_10000_tensors_fits_the_default_budget_with_room_to_spare() {
        let pickle = state_dict_pickle(10_000);
        let (dict, _) = load(&pickle).unwrap();
        let entries: Vec<_> = dict.dict_entries().unwrap().collect();
        assert_eq!(entries.len(), 10_000);
        assert!(matches!(entries[9_999].1, Value::Tensor(t) if t.size == [16, 16] && &*t.storage.key == "9999"));
        let used = charged(&pickle);
        eprintln!("a state dict of 10,000 tensors: {} bytes of pickle, {used} bytes charged", pickle.len());
        assert!(used < DEFAULT_BUDGET * 3 / 5, "{used}");
    }
}
