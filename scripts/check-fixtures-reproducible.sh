#!/usr/bin/env bash
# Re-run the fixture exporters (BatchNorm, synchronized, normalization family) into a temp dir and
# diff against the committed fixtures/.
# TensorFlow part: needs tensorflow-cpu 2.21.0 (+ numpy). Uses $TF_PYTHON if set, else
# /work/venv-tf/bin/python, else python3; creates nothing in the repo. When TensorFlow cannot be
# imported (or installed into a temp venv with BN_FIXTURES_INSTALL_TF=1), that part is SKIPPED
# with a message and the TF.js part still runs. Exit 0: reproduced (or skipped); 1: differs.
set -u
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0

echo "== TF.js: npx tsx scripts/export-tfjs-fixtures.ts $tmp/tfjs"
if npx tsx scripts/export-tfjs-fixtures.ts "$tmp/tfjs" >/dev/null 2>"$tmp/tfjs.log"; then
  if diff -r fixtures/tfjs "$tmp/tfjs" >"$tmp/tfjs.diff"; then
    echo "TF.js fixtures: reproduced byte for byte ($(ls "$tmp/tfjs" | wc -l) files)"
  else
    echo "TF.js fixtures DIFFER:"; head -40 "$tmp/tfjs.diff"; status=1
  fi
else
  echo "TF.js exporter failed:"; tail -20 "$tmp/tfjs.log"; status=1
fi

echo "== TF.js family: npx tsx scripts/export-tfjs-family-fixtures.ts $tmp/tfjs-family"
if npx tsx scripts/export-tfjs-family-fixtures.ts "$tmp/tfjs-family" >/dev/null 2>"$tmp/tfjsf.log"; then
  if diff -r fixtures/tfjs-family "$tmp/tfjs-family" >"$tmp/tfjsf.diff"; then
    echo "TF.js family fixtures: reproduced byte for byte ($(ls "$tmp/tfjs-family" | wc -l) files)"
  else
    echo "TF.js family fixtures DIFFER:"; head -40 "$tmp/tfjsf.diff"; status=1
  fi
else
  echo "TF.js family exporter failed:"; tail -20 "$tmp/tfjsf.log"; status=1
fi

py="${TF_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /work/venv-tf/bin/python ]; then py=/work/venv-tf/bin/python; else py=python3; fi
fi
if ! "$py" -c 'import tensorflow, keras, numpy' >/dev/null 2>&1; then
  if [ "${BN_FIXTURES_INSTALL_TF:-0}" = 1 ]; then
    echo "== installing tensorflow-cpu==2.21.0 into a temp venv"
    # a machine with a local wheel store and no PyPI (like ours): point pip at it, or it retries PyPI
    pipargs=()
    [ -d /opt/wheels ] && pipargs=(--index-url file:///opt/pypi/simple --find-links /opt/wheels)
    if python3 -m venv "$tmp/venv" && PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/pip" install -q "${pipargs[@]}" tensorflow-cpu==2.21.0 numpy >"$tmp/pip.log" 2>&1; then
      py="$tmp/venv/bin/python"
    fi
  fi
fi
if "$py" -c 'import tensorflow, keras, numpy' >/dev/null 2>&1; then
  echo "== TensorFlow: $py scripts/export_tf_fixtures.py $tmp/tensorflow"
  if "$py" scripts/export_tf_fixtures.py "$tmp/tensorflow" >/dev/null 2>"$tmp/tf.log"; then
    if diff -r fixtures/tensorflow "$tmp/tensorflow" >"$tmp/tf.diff"; then
      echo "TensorFlow fixtures: reproduced byte for byte ($(ls "$tmp/tensorflow" | wc -l) files)"
    else
      echo "TensorFlow fixtures DIFFER (check the package versions recorded in the files):"; head -40 "$tmp/tf.diff"; status=1
    fi
  else
    echo "TensorFlow exporter failed:"; tail -20 "$tmp/tf.log"; status=1
  fi
  echo "== Keras 3 synchronized BN: $py scripts/export_keras_sync_fixtures.py $tmp/keras-sync"
  if "$py" scripts/export_keras_sync_fixtures.py "$tmp/keras-sync" >/dev/null 2>"$tmp/ks.log"; then
    if diff -r fixtures/keras-sync "$tmp/keras-sync" >"$tmp/ks.diff"; then
      echo "Keras sync fixtures: reproduced byte for byte ($(ls "$tmp/keras-sync" | wc -l) files)"
    else
      echo "Keras sync fixtures DIFFER:"; head -40 "$tmp/ks.diff"; status=1
    fi
  else
    echo "Keras sync exporter failed:"; tail -20 "$tmp/ks.log"; status=1
  fi
  echo "== Keras 3 normalization family: $py scripts/export_tf_family_fixtures.py $tmp/keras-family"
  if "$py" scripts/export_tf_family_fixtures.py "$tmp/keras-family" >/dev/null 2>"$tmp/kf.log"; then
    if diff -r fixtures/keras-family "$tmp/keras-family" >"$tmp/kf.diff"; then
      echo "Keras family fixtures: reproduced byte for byte ($(ls "$tmp/keras-family" | wc -l) files)"
    else
      echo "Keras family fixtures DIFFER:"; head -40 "$tmp/kf.diff"; status=1
    fi
  else
    echo "Keras family exporter failed:"; tail -20 "$tmp/kf.log"; status=1
  fi
else
  echo "SKIPPED TensorFlow fixtures: tensorflow-cpu 2.21.0 is not importable from '$py'"
  echo "  (python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow-cpu==2.21.0 numpy; or TF_PYTHON=..., or BN_FIXTURES_INSTALL_TF=1)"
fi

# PyTorch (torch 2.13 CPU) and ONNX (onnx.reference) parts, each with its own interpreter:
# $TORCH_PYTHON, else /work/venv-torch-fx/bin/python, else python3 (likewise $ONNX_PYTHON and
# /work/venv-onnx-fx). A part whose packages cannot be imported is SKIPPED with a message.
pick_python() { # the variable's value, a venv
  if [ -n "$1" ]; then echo "$1"; elif [ -x "$2/bin/python" ]; then echo "$2/bin/python"; else echo python3; fi
}
replay_python() { # label, python, modules, exporter, fixtures subdirectory
  local label="$1" py="$2" mods="$3" script="$4" sub="$5"
  if ! "$py" -c "import $mods" >/dev/null 2>&1; then
    echo "SKIPPED $label fixtures: '$mods' cannot be imported from '$py'"
    echo "  (python3 -m venv /work/venv-X && /work/venv-X/bin/pip install ${mods//,/}; then point \$${6}_PYTHON at it)"
    return
  fi
  echo "== $label: $py $script $tmp/$sub"
  if "$py" "$script" "$tmp/$sub" >/dev/null 2>"$tmp/$sub.log"; then
    if diff -r "fixtures/$sub" "$tmp/$sub" >"$tmp/$sub.diff"; then
      echo "$label fixtures: reproduced byte for byte ($(ls "$tmp/$sub" | wc -l) files)"
    else
      echo "$label fixtures DIFFER (check the package versions recorded in the files):"; head -40 "$tmp/$sub.diff"; status=1
    fi
  else
    echo "$label exporter failed:"; tail -20 "$tmp/$sub.log"; status=1
  fi
}
replay_python PyTorch "$(pick_python "${TORCH_PYTHON:-}" /work/venv-torch-fx)" "torch, numpy" scripts/export_torch_fixtures.py pytorch TORCH
replay_python ONNX "$(pick_python "${ONNX_PYTHON:-}" /work/venv-onnx-fx)" "onnx, numpy, ml_dtypes" scripts/export_onnx_fixtures.py onnx ONNX

# The manifest must match the committed files.
if npx tsx -e "
import { loadFixtures } from './src/fixtures/index.ts';
const r = loadFixtures(); console.log('manifest: ' + r.fixtures.length + ' files verified');
" 2>"$tmp/m.log"; then :; else echo "manifest check failed:"; tail -5 "$tmp/m.log"; status=1; fi
exit $status
