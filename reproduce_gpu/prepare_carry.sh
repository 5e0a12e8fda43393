#!/usr/bin/env bash
# Copy the benchmark files a GPU reproduction run needs out of a local mirror into an ignored folder of the checkout
# (default .carry/inputs), laid out like the download base URL, each checked against config/manifest/benchmarks.tsv.
#
#   reproduce_gpu/prepare_carry.sh MIRROR_DIR [DEST]            # all _GT/_noisy/_masked PNGs (96 files, ~38 MiB)
#   reproduce_gpu/prepare_carry.sh --minimal MIRROR_DIR [DEST]  # what the default run reads (27 files, ~6 MiB)
#
# MIRROR_DIR: a folder laid out like https://raw.githubusercontent.com/ (what the workflow's download_base_url
# serves). What reproduce_gpu/run.sh reads depends on its --blocks: each image's _GT file and its released
# degraded input where there is one (_noisy, _masked). --minimal copies what its default blocks read (Set5/Set14 x4
# _GT; the grey inpainting's four 256 px images, _GT and _masked); the full carry serves every block. The released
# outputs of every method are not copied: their scores are committed (results/paper/scores/released/). DEST also
# gets SHA256SUMS (what was copied, checked) and COMMIT (the checkout's commit and its uncommitted changes: the GPU
# machine sees no .git). Files already in DEST with the right checksum are kept; mtimes are preserved (cp -p).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

minimal=0
args=()
for a in "$@"; do
  case "$a" in
    --minimal) minimal=1 ;;
    -h|--help) usage 0 ;;
    -*) echo "unknown option $a" >&2; usage ;;
    *) args+=("$a") ;;
  esac
done
[ "${#args[@]}" -ge 1 ] && [ "${#args[@]}" -le 2 ] || usage

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mirror="${args[0]}"
dest="${args[1]:-$repo/.carry/inputs}"
manifest="$repo/config/manifest/benchmarks.tsv"
page="DmitryUlyanov/dmitryulyanov.github.io/master/assets/deep-image-prior/"

[ -d "$mirror" ] || { echo "mirror folder $mirror not found" >&2; exit 2; }
[ -f "$manifest" ] || { echo "manifest $manifest not found" >&2; exit 2; }

if [ "$minimal" = 1 ]; then
  pattern='SR/Set(5|14)/x4/[^/]+_GT\.png$|Gray/50p/(house|peppers256|Cameraman256|montage)_(GT|masked)\.png$'
else
  pattern='_(GT|noisy|masked)\.png$'
fi
# "<sha256>  <path>" for every wanted row of the manifest (tab-separated: path, sha256, size, channels)
list="$(awk -F'\t' -v page="$page" -v pat="$pattern" \
  'NR > 1 && $1 !~ /^#/ && index($1, page) == 1 && $1 ~ pat { print $2 "  " $1 }' "$manifest")"
[ -n "$list" ] || { echo "no file of the manifest matches" >&2; exit 2; }

mkdir -p "$dest"
copied=0 kept=0
while read -r sum rel; do
  src="$mirror/$rel" dst="$dest/$rel"
  if [ -f "$dst" ] && [ "$(sha256sum "$dst" | cut -d' ' -f1)" = "$sum" ]; then
    kept=$((kept + 1))
    continue
  fi
  [ -f "$src" ] || { echo "missing in the mirror: $src" >&2; exit 1; }
  mkdir -p "$(dirname "$dst")"
  cp -p "$src" "$dst"
  copied=$((copied + 1))
done <<< "$list"

printf '%s\n' "$list" > "$dest/SHA256SUMS"
if ! (cd "$dest" && sha256sum --check --quiet SHA256SUMS); then
  echo "checksum mismatch (see above): the mirror does not hold the manifest's files" >&2
  exit 1
fi

{
  if git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
    echo "commit $(git -C "$repo" rev-parse HEAD)"
    echo "date $(git -C "$repo" log -1 --format=%cI)"
    changes="$(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=normal 2>/dev/null || true)"
    if [ -n "$changes" ]; then
      echo "uncommitted changes when the carry was made (git status --porcelain):"
      printf '%s\n' "$changes"
    else
      echo "clean working tree"
    fi
  else
    echo "commit unknown (no git checkout)"
  fi
  echo "carry made $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$dest/COMMIT"

n="$(printf '%s\n' "$list" | wc -l)"
echo "$dest: $n files ($copied copied, $kept already there), $(du -sh "$dest" | cut -f1), sha256 checked"
