//! The converter on a tiny synthetic CTranslate2 Whisper: names, shapes, types, fused
//! rows, int8 weights, q8_0 output and refusals.

use super::super::ct2::{self, Ct2DType};
use super::*;

/// Builds CTranslate2 variables with distinct, predictable values.
struct Fixture {
    vars: Vec<(String, Vec<usize>, Ct2DType, Vec<u8>)>,
    counter: f32,
    weight_dtype: Ct2DType,
    state: usize,
}

impl Fixture {
    fn f16(&mut self, name: &str, shape: Vec<usize>) {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n * 2);
        for _ in 0..n {
            self.counter += 1.0;
            data.extend(half::f16::from_f32(self.counter / 64.0).to_le_bytes());
        }
        self.vars
            .push((name.to_string(), shape, Ct2DType::F16, data));
    }

    fn linear(&mut self, p: &str, rows: usize, cols: usize) {
        let name = format!("{p}/weight");
        if self.weight_dtype == Ct2DType::I8 {
            self.vars.push((
                name.clone(),
                vec![rows, cols],
                Ct2DType::I8,
                vec![2u8; rows * cols],
            ));
            let scale = (0..rows).flat_map(|_| 4f32.to_le_bytes()).collect();
            self.vars
                .push((format!("{name}_scale"), vec![rows], Ct2DType::F32, scale));
        } else {
            self.f16(&name, vec![rows, cols]);
        }
        self.f16(&format!("{p}/bias"), vec![rows]);
    }

    fn layer_norm(&mut self, p: &str) {
        self.f16(&format!("{p}/gamma"), vec![self.state]);
        self.f16(&format!("{p}/beta"), vec![self.state]);
    }
}

/// A tiny but structurally complete Whisper in CTranslate2 form: 1+1 layers, state 4.
fn tiny_ct2(weight_dtype: Ct2DType) -> Vec<u8> {
    ct2_with_state(weight_dtype, 4)
}

/// The same Whisper with state `s` (a multiple of 32 can be stored as q8_0).
fn ct2_with_state(weight_dtype: Ct2DType, s: usize) -> Vec<u8> {
    let mut f = Fixture {
        vars: Vec::new(),
        counter: 0.0,
        weight_dtype,
        state: s,
    };
    f.f16("encoder/conv1/weight", vec![s, 3, 3]);
    f.f16("encoder/conv1/bias", vec![s]);
    f.f16("encoder/conv2/weight", vec![s, s, 3]);
    f.f16("encoder/conv2/bias", vec![s]);
    f.f16("encoder/position_encodings/encodings", vec![6, s]);
    f.layer_norm("encoder/layer_0/self_attention/layer_norm");
    f.linear("encoder/layer_0/self_attention/linear_0", 3 * s, s);
    f.linear("encoder/layer_0/self_attention/linear_1", s, s);
    f.layer_norm("encoder/layer_0/ffn/layer_norm");
    f.linear("encoder/layer_0/ffn/linear_0", 4 * s, s);
    f.linear("encoder/layer_0/ffn/linear_1", s, 4 * s);
    f.layer_norm("encoder/layer_norm");
    f.f16("decoder/embeddings/weight", vec![5, s]);
    f.f16("decoder/position_encodings/encodings", vec![7, s]);
    f.layer_norm("decoder/layer_0/self_attention/layer_norm");
    f.linear("decoder/layer_0/self_attention/linear_0", 3 * s, s);
    f.linear("decoder/layer_0/self_attention/linear_1", s, s);
    f.layer_norm("decoder/layer_0/attention/layer_norm");
    f.linear("decoder/layer_0/attention/linear_0", s, s);
    f.linear("decoder/layer_0/attention/linear_1", 2 * s, s);
    f.linear("decoder/layer_0/attention/linear_2", s, s);
    f.layer_norm("decoder/layer_0/ffn/layer_norm");
    f.linear("decoder/layer_0/ffn/linear_0", 4 * s, s);
    f.linear("decoder/layer_0/ffn/linear_1", s, 4 * s);
    f.layer_norm("decoder/layer_norm");
    for p in ["encoder", "decoder"] {
        f.vars.push((
            format!("{p}/num_heads"),
            vec![],
            Ct2DType::I16,
            2i16.to_le_bytes().to_vec(),
        ));
    }
    ct2::serialize(
        "WhisperSpec",
        &f.vars,
        &[(
            "decoder/projection/weight".into(),
            "decoder/embeddings/weight".into(),
        )],
    )
}

const VOCAB: &str = "a\nb\nĠc\n<|endoftext|>\n<|startoftranscript|>\n";

fn convert_bytes(ct2_bytes: &[u8]) -> Result<(Hparams, Vec<u8>), ConvertError> {
    convert_as(ct2_bytes, Weights::F16)
}

fn convert_as(ct2_bytes: &[u8], weights: Weights) -> Result<(Hparams, Vec<u8>), ConvertError> {
    let model = ct2::parse(ct2_bytes).unwrap();
    let mut out = Vec::new();
    let hp = convert(&model, VOCAB, weights, &mut out)?;
    Ok((hp, out))
}

#[test]
fn converts_names_shapes_and_types() {
    let (hp, bytes) = convert_bytes(&tiny_ct2(Ct2DType::F16)).unwrap();
    assert_eq!(
        hp,
        Hparams {
            n_vocab: 5,
            n_audio_ctx: 6,
            n_audio_state: 4,
            n_audio_head: 2,
            n_audio_layer: 1,
            n_text_ctx: 7,
            n_text_state: 4,
            n_text_head: 2,
            n_text_layer: 1,
            n_mels: 3,
            ftype: 1
        }
    );
    let summary = summarize(&bytes).unwrap();
    assert_eq!(summary.hparams, hp);
    assert_eq!(summary.n_tokens, 3);
    let find = |name: &str| {
        summary
            .tensors
            .iter()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .clone()
    };
    // ggml order is innermost first; conv biases become [n, 1] f32.
    assert_eq!(
        find("encoder.conv1.weight"),
        ("encoder.conv1.weight".into(), vec![3, 3, 4], 1)
    );
    assert_eq!(find("encoder.conv1.bias").1, vec![1, 4]);
    assert_eq!(find("encoder.conv1.bias").2, 0);
    assert_eq!(find("encoder.positional_embedding").2, 0);
    assert_eq!(find("decoder.positional_embedding").1, vec![4, 7]);
    assert_eq!(find("encoder.blocks.0.attn.key.weight").1, vec![4, 4]);
    assert_eq!(
        find("encoder.blocks.0.attn.query.bias"),
        ("encoder.blocks.0.attn.query.bias".into(), vec![4], 0)
    );
    assert_eq!(
        find("decoder.blocks.0.cross_attn.value.weight").1,
        vec![4, 4]
    );
    assert_eq!(find("decoder.token_embedding.weight").1, vec![4, 5]);
    // Key biases are dropped, the tied projection is not written.
    assert!(summary.tensors.iter().all(|t| !t.0.ends_with("key.bias")));
    assert!(summary.tensors.iter().all(|t| !t.0.contains("projection")));
    let enc_block = summary
        .tensors
        .iter()
        .filter(|t| t.0.starts_with("encoder.blocks.0."))
        .count();
    let dec_block = summary
        .tensors
        .iter()
        .filter(|t| t.0.starts_with("decoder.blocks.0."))
        .count();
    assert_eq!(enc_block, 15);
    assert_eq!(dec_block, 15 + 9);
}

#[test]
fn splits_fused_rows_in_order() {
    let bytes = tiny_ct2(Ct2DType::F16);
    let model = ct2::parse(&bytes).unwrap();
    let fused = model
        .get("encoder/layer_0/self_attention/linear_0/weight")
        .unwrap()
        .to_f32();
    let (_, out) = convert_bytes(&bytes).unwrap();
    // The value block (last third of the fused rows) must appear verbatim as f16 in the output.
    let value: Vec<u8> = fused[32..48]
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    assert!(out.windows(value.len()).any(|w| w == value.as_slice()));
}

#[test]
fn dequantizes_int8_weights() {
    let (_, out) = convert_bytes(&tiny_ct2(Ct2DType::I8)).unwrap();
    // 2 / 4 = 0.5 everywhere in the quantized matrices.
    let half_f16 = half::f16::from_f32(0.5).to_le_bytes();
    let run: Vec<u8> = half_f16.iter().copied().cycle().take(32).collect();
    assert!(out.windows(32).any(|w| w == run.as_slice()));
    assert!(summarize(&out).is_ok());
}

#[test]
fn rejects_other_specs_missing_tensors_and_bad_files() {
    let other = ct2::serialize("TransformerSpec", &[], &[]);
    assert!(matches!(
        convert_bytes(&other),
        Err(ConvertError::NotWhisper(_))
    ));
    let empty = ct2::serialize("WhisperSpec", &[], &[]);
    assert!(matches!(
        convert_bytes(&empty),
        Err(ConvertError::Missing(_))
    ));
    assert!(summarize(b"GGUF....").is_err());
    let (_, out) = convert_bytes(&tiny_ct2(Ct2DType::F16)).unwrap();
    assert!(summarize(&out[..out.len() - 3]).is_err());
}

#[test]
fn q8_0_quantizes_weight_matrices_only() {
    let ct2_bytes = ct2_with_state(Ct2DType::F16, 32);
    let (hp, out) = convert_as(&ct2_bytes, Weights::Q8_0).unwrap();
    assert_eq!(hp.ftype, 2007);
    let summary = summarize(&out).unwrap();
    assert_eq!(summary.hparams.ftype, 2007);
    let ty = |name: &str| summary.tensors.iter().find(|t| t.0 == name).unwrap().2;
    // Matrices q8_0; conv kernels f16; 1-D, positional embeddings and conv biases f32.
    assert_eq!(ty("encoder.blocks.0.attn.query.weight"), enc::TYPE_Q8_0);
    assert_eq!(ty("decoder.blocks.0.mlp.2.weight"), enc::TYPE_Q8_0);
    assert_eq!(ty("decoder.token_embedding.weight"), enc::TYPE_Q8_0);
    assert_eq!(ty("encoder.conv2.weight"), enc::TYPE_F16);
    assert_eq!(ty("encoder.conv1.bias"), enc::TYPE_F32);
    assert_eq!(ty("encoder.positional_embedding"), enc::TYPE_F32);
    assert_eq!(ty("decoder.blocks.0.attn.query.bias"), enc::TYPE_F32);
    // Each quantized value takes 34/32 bytes instead of 2; nothing else changes size.
    let quantized: usize = summary
        .tensors
        .iter()
        .filter(|t| t.2 == enc::TYPE_Q8_0)
        .map(|t| t.1.iter().product::<usize>())
        .sum();
    let (_, f16) = convert_as(&ct2_bytes, Weights::F16).unwrap();
    assert_eq!(f16.len() - out.len(), quantized * 30 / 32);

    // The value rows of the fused projection come back within one quantization step.
    let model = ct2::parse(&ct2_bytes).unwrap();
    let fused = model
        .get("encoder/layer_0/self_attention/linear_0/weight")
        .unwrap()
        .to_f32();
    let value = &fused[2 * 32 * 32..3 * 32 * 32];
    let mut expected = Vec::new();
    enc::encode(enc::TYPE_Q8_0, value, &mut expected);
    let at = out
        .windows(expected.len())
        .position(|w| w == expected.as_slice())
        .expect("quantized value block in the file");
    let back = enc::dequantize_q8_0(&out[at..at + expected.len()]);
    let amax = value.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        value
            .iter()
            .zip(&back)
            .all(|(a, b)| (a - b).abs() <= amax / 127.0)
    );
}

#[test]
fn q8_0_refuses_rows_that_are_not_whole_blocks() {
    let err = convert_as(&tiny_ct2(Ct2DType::F16), Weights::Q8_0).unwrap_err();
    assert!(matches!(err, ConvertError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("q8_0"), "{err}");
}
