#!/usr/bin/env bash
# Certificates and synthetic data for the configs in this folder.
# Run from this folder with the venv active (`. ../../.venv/bin/activate`).
set -euo pipefail
pets certs init --dir certs
pets certs issue --dir certs --role leader --name leader
pets certs issue --dir certs --role helper --name helper-1
for i in 1 2 3; do pets certs issue --dir certs --role holder --name "hospital-0$i"; done
pets certs issue --dir certs --role analyst --name alice
pets gen-data --kind hospitals --holders 3 --rows 500 --out data > /dev/null
echo "ready: start the helper, the leader and three nodes, then run a query:"
echo "  pets serve --config helper.toml &"
echo "  pets serve --config leader.toml &"
echo "  for i in 1 2 3; do pets node --config node-0\$i.toml & done"
echo "  pets query --config analyst.toml --close-after 3 --query 'mean(cost) from hospitals group by sex'"
echo "  pets node history --config node-01.toml"
