//! Reader for CTranslate2 `model.bin` files (format version 6).
//!
//! Layout, all little-endian: u32 version; spec name and then u32 revision; u32 variable
//! count; per variable: name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, data;
//! then u32 alias count and (alias, target) name pairs. Strings are u16 length (counting a
//! trailing NUL) followed by the bytes.
//!
//! The input is untrusted: every length is checked against what is left of the buffer and
//! against the variable's shape, and nothing here panics on malformed data.

use std::collections::HashMap;

use super::bytes::{ByteReader, Truncated};

/// Element types CTranslate2 stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 => 3,
            Self::F16 => 4,
            Self::BF16 => 5,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One named tensor, borrowing its data from the file buffer.
#[derive(Debug, Clone)]
pub struct Ct2Variable<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Ct2DType,
    pub data: &'a [u8],
}

impl Ct2Variable<'_> {
    pub fn element_count(&self) -> usize {
        self.shape.iter().product()
    }

    /// Values as f32, whatever the stored float or integer type.
    pub fn to_f32(&self) -> Vec<f32> {
        let d = self.data;
        match self.dtype {
            Ct2DType::F32 => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Ct2DType::F16 => d
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Ct2DType::BF16 => d
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Ct2DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            Ct2DType::I16 => d
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
                .collect(),
            Ct2DType::I32 => d
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
                .collect(),
        }
    }

    /// A scalar integer (CTranslate2 stores `num_heads` and flags this way).
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.element_count() != 1 {
            return None;
        }
        self.to_f32().first().map(|&v| v as i64)
    }
}

/// A parsed model: spec name, revision, variables by name, aliases.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Ct2Variable<'a>>,
    pub aliases: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl<'a> Ct2Model<'a> {
    pub fn get(&self, name: &str) -> Option<&Ct2Variable<'a>> {
        self.index.get(name).map(|&i| &self.variables[i])
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ct2Error {
    #[error("not a CTranslate2 model: format version {0} (expected 6)")]
    BadVersion(u32),
    #[error("truncated CTranslate2 model: needed {needed} bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("malformed CTranslate2 model: {0}")]
    Malformed(String),
}

/// The only format version this reader understands.
pub const FORMAT_VERSION: u32 = 6;
const MAX_RANK: usize = 8;

/// Parse a whole `model.bin` held in memory.
pub fn parse(bytes: &[u8]) -> Result<Ct2Model<'_>, Ct2Error> {
    let mut r = ByteReader::new(bytes);
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(Ct2Error::BadVersion(version));
    }
    let spec = string(&mut r)?;
    let revision = r.u32()?;
    let count = r.u32()? as usize;
    let mut variables = Vec::with_capacity(count.min(4096));
    let mut index = HashMap::new();
    for _ in 0..count {
        let name = string(&mut r)?;
        let rank = r.u8()? as usize;
        if rank > MAX_RANK {
            return Err(Ct2Error::Malformed(format!("{name}: rank {rank}")));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32()? as usize);
        }
        let code = r.u8()?;
        let dtype = Ct2DType::from_code(code)
            .ok_or_else(|| Ct2Error::Malformed(format!("{name}: unknown dtype {code}")))?;
        let byte_count = r.u32()? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Ct2Error::Malformed(format!("{name}: shape {shape:?} overflows")))?;
        if expected != byte_count {
            return Err(Ct2Error::Malformed(format!(
                "{name}: {byte_count} bytes for shape {shape:?} of {dtype:?}"
            )));
        }
        let data = r.take(byte_count)?;
        if index.insert(name.clone(), variables.len()).is_some() {
            return Err(Ct2Error::Malformed(format!("duplicate variable {name}")));
        }
        variables.push(Ct2Variable {
            name,
            shape,
            dtype,
            data,
        });
    }
    let alias_count = r.u32()? as usize;
    let mut aliases = Vec::with_capacity(alias_count.min(4096));
    for _ in 0..alias_count {
        aliases.push((string(&mut r)?, string(&mut r)?));
    }
    Ok(Ct2Model {
        spec,
        revision,
        variables,
        aliases,
        index,
    })
}

impl From<Truncated> for Ct2Error {
    fn from(t: Truncated) -> Self {
        Ct2Error::Truncated {
            offset: t.offset,
            needed: t.needed,
        }
    }
}

fn string(r: &mut ByteReader) -> Result<String, Ct2Error> {
    let len = r.u16()? as usize;
    let raw = r.take(len)?;
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    String::from_utf8(raw.to_vec()).map_err(|_| Ct2Error::Malformed("name is not UTF-8".into()))
}

/// Serialize variables in the same format. Used to build test fixtures and by the fuzz target's
/// seed corpus; the gateway itself never writes CTranslate2 files.
pub fn serialize(
    spec: &str,
    variables: &[(String, Vec<usize>, Ct2DType, Vec<u8>)],
    aliases: &[(String, String)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend(((s.len() + 1) as u16).to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend(FORMAT_VERSION.to_le_bytes());
    string(&mut out, spec);
    out.extend(1u32.to_le_bytes());
    out.extend((variables.len() as u32).to_le_bytes());
    for (name, shape, dtype, data) in variables {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for &d in shape {
            out.extend((d as u32).to_le_bytes());
        }
        out.push(dtype.code());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
    }
    out.extend((aliases.len() as u32).to_le_bytes());
    for (a, b) in aliases {
        string(&mut out, a);
        string(&mut out, b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes().to_vec();
        serialize(
            "WhisperSpec",
            &[
                (
                    "a/weight".into(),
                    vec![2, 2],
                    Ct2DType::F16,
                    [1.0, 2.0, 3.0, 4.0].iter().flat_map(|&v| f16(v)).collect(),
                ),
                (
                    "a/num_heads".into(),
                    vec![],
                    Ct2DType::I16,
                    6i16.to_le_bytes().to_vec(),
                ),
            ],
            &[("b/weight".into(), "a/weight".into())],
        )
    }

    #[test]
    fn parses_what_it_serializes() {
        let bytes = sample();
        let m = parse(&bytes).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        let w = m.get("a/weight").unwrap();
        assert_eq!(w.shape, vec![2, 2]);
        assert_eq!(w.to_f32(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.get("a/num_heads").unwrap().scalar_i64(), Some(6));
        assert_eq!(
            m.aliases,
            vec![("b/weight".to_string(), "a/weight".to_string())]
        );
    }

    #[test]
    fn rejects_bad_version_and_truncation() {
        let mut bytes = sample();
        bytes[0] = 7;
        assert_eq!(parse(&bytes).unwrap_err(), Ct2Error::BadVersion(7));
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn rejects_size_mismatch() {
        let bytes = serialize(
            "S",
            &[("x".into(), vec![3], Ct2DType::F32, vec![0; 8])],
            &[],
        );
        assert!(matches!(parse(&bytes), Err(Ct2Error::Malformed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn corrupted_bytes_never_panic(pos in 0usize..120, val in any::<u8>()) {
            let mut bytes = sample();
            let p = pos % bytes.len();
            bytes[p] = val;
            let _ = parse(&bytes);
        }
    }
}
