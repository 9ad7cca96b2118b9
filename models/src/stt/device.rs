//! The GPUs this build of whisper.cpp can use, read from ggml's device registry.
//!
//! A CPU-only build registers no GPU. A `cuda` build registers one per CUDA device the driver
//! reports; with no driver, or no device, it registers none, and whisper.cpp falls back to the
//! CPU, so the engine reports what was found here rather than what it asked for.

use std::ffi::CStr;

use whisper_rs::whisper_rs_sys as sys;

/// One GPU, as ggml names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuDevice {
    /// ggml's backend name (`CUDA0`).
    pub name: String,
    /// The device's own name (`NVIDIA H200`).
    pub description: String,
    pub total_bytes: usize,
    pub free_bytes: usize,
}

impl std::fmt::Display for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        write!(
            f,
            "{} ({}, {:.1} GiB, {:.1} GiB free)",
            self.description,
            self.name,
            gib(self.total_bytes),
            gib(self.free_bytes)
        )
    }
}

/// Every GPU in ggml's registry, in the order whisper.cpp numbers them.
pub fn gpus() -> Vec<GpuDevice> {
    let text = |p: *const std::os::raw::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: ggml returns NUL-terminated strings owned by the registry, which lives
            // as long as the process.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: the registry functions take no pointers from us except the two out-parameters of
    // `ggml_backend_dev_memory`, which point at live locals; device handles come from the
    // registry itself and stay valid for the process.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| sys::ggml_backend_dev_get(i))
            .filter(|&dev| {
                !dev.is_null()
                    && sys::ggml_backend_dev_type(dev)
                        == sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_GPU
            })
            .map(|dev| {
                let (mut free, mut total) = (0usize, 0usize);
                sys::ggml_backend_dev_memory(dev, &mut free, &mut total);
                GpuDevice {
                    name: text(sys::ggml_backend_dev_name(dev)),
                    description: text(sys::ggml_backend_dev_description(dev)),
                    total_bytes: total,
                    free_bytes: free,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(not(feature = "cuda"))]
    fn a_cpu_build_sees_no_gpu() {
        assert!(super::gpus().is_empty());
    }
}
