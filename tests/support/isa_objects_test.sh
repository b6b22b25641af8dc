#!/bin/bash
# The BatchNorm loops are compiled three times with different -m flags (CMakeLists.txt). If one of
# those objects defined a global or weak (COMDAT) symbol, such as an out-of-line inline function
# or template instantiation, the linker would keep one instruction set's copy for every caller,
# and a CPU without AVX-512 could run an AVX-512 copy. Each object may define only its own table.
#   usage: isa_objects_test.sh OBJECT...
set -euo pipefail
status=0
for object in "$@"; do
  [ -f "$object" ] || { echo "missing object file: $object"; exit 1; }
  # nm: global (upper case) or weak/unique (w, v, u) definitions; U is a reference, not a definition.
  # (AddressSanitizer adds an __odr_asan. twin of the table, matched by the same suffix.)
  bad=$(nm "$object" | awk '$1 != "U" && NF == 3 && ($2 ~ /^[A-TV-Z]$/ || $2 ~ /^[wvu]$/) && $3 !~ /table_(avx512f|avx2|baseline)E$/')
  tables=$(nm "$object" | awk 'NF == 3 && $3 ~ /^_ZN5bnlab7kernels5loops[0-9]+table_(avx512f|avx2|baseline)E$/' | wc -l)
  if [ -n "$bad" ]; then
    echo "$object defines shared symbols:"
    echo "$bad"
    status=1
  fi
  if [ "$tables" != 1 ]; then
    echo "$object defines $tables loop tables, expected 1"
    status=1
  fi
done
[ $status = 0 ] && echo "ok: $# per-ISA objects define only their loop tables"
exit $status
