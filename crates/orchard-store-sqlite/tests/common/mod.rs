//! What the SQLite tests share.

use std::path::PathBuf;

/// A folder of its own under the system's temp dir, unique to this process and call.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    ))
}
