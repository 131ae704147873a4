# Sourced by the scripts: puts a rustup-installed cargo on PATH when the shell lacks it.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
