#!/usr/bin/env bash
# The import graph of the gateway's top-level modules (gateway/src/*.rs and gateway/src/*/),
# read from every `crate::` path, and any cycle in it. Exits 1 on a cycle.
#
#   bash .ci/module-cycles.sh [SRC_DIR]     (default: gateway/src)
#
# `crate::Name` of a root re-export (`pub use module::Name` in lib.rs) counts as `module`.
# Comments are ignored, test modules are not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=${1:-gateway/src}

modules=()
for path in "$src"/*.rs "$src"/*/; do
    name=$(basename "$path" .rs)
    [[ $name == lib || $name == main ]] && continue
    modules+=("$name")
done

# Root re-exports: `pub use config::{Cli, Config}` makes `crate::Config` mean `config`.
aliases=$(sed -n 's/^pub use \([a-z_]*\)::\(.*\);$/\1 \2/p' "$src/lib.rs" | tr -d '{},' )

# The top-level names one file's `crate::` paths start with (`crate::{a, b::c}` gives a, b).
crate_names() {
    sed 's://.*$::' "$1" | tr '\n' ' ' | awk '{
        text = $0
        while ((at = index(text, "crate::")) > 0) {
            text = substr(text, at + 7)
            if (substr(text, 1, 1) != "{") {
                match(text, /^[A-Za-z_][A-Za-z0-9_]*/)
                if (RLENGTH > 0) print substr(text, 1, RLENGTH)
                continue
            }
            depth = 0; item = 1
            for (i = 1; i <= length(text); i++) {
                c = substr(text, i, 1)
                if (c == "{") { depth++; if (depth == 1) item = 1; continue }
                if (c == "}") { depth--; if (depth == 0) break; continue }
                if (depth == 1 && c == ",") { item = 1; continue }
                if (depth == 1 && item && c ~ /[A-Za-z_]/) {
                    match(substr(text, i), /^[A-Za-z_][A-Za-z0-9_]*/)
                    print substr(text, i, RLENGTH)
                    i += RLENGTH - 1; item = 0
                }
            }
            text = substr(text, i)
        }
    }'
}

edges=()
echo "gateway module graph ($src; module -> the modules it imports):"
for module in "${modules[@]}"; do
    if [[ -d $src/$module ]]; then files=$(find "$src/$module" -name '*.rs'); else files=$src/$module.rs; fi
    deps=$(for file in $files; do crate_names "$file"; done | sort -u | while read -r name; do
        if [[ " ${modules[*]} " == *" $name "* ]]; then
            echo "$name"
        else
            awk -v n="$name" '{ for (i = 2; i <= NF; i++) if ($i == n) print $1 }' <<<"$aliases"
        fi
    done | { grep -vx "$module" || true; } | sort -u | tr '\n' ' ')
    printf '  %-10s -> %s\n' "$module" "${deps:-(nothing)}"
    edges+=("$module $module")
    for dep in $deps; do edges+=("$module $dep"); done
done

if loops=$(printf '%s\n' "${edges[@]}" | tsort 2>&1 >/dev/null); then
    echo "no cycle"
else
    echo "CYCLE: module graph has loops (each as tsort found it):"
    awk '/input contains a loop/ { if (loop) print "  " loop; loop = ""; next }
         { sub(/^tsort: /, ""); loop = loop ? loop " -> " $0 : $0 }
         END { if (loop) print "  " loop }' <<<"$loops"
    exit 1
fi
