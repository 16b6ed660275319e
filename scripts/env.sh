# Sourced by the scripts: puts a Rust toolchain on PATH (rustup's, else Debian's).
if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
KITH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KITH_ROOT
