#!/usr/bin/env bash
# Installs the system programs the local stack needs, when they are missing:
# redis-server, a Java runtime (for the Kafka broker), Maven (to fetch its jars once) and
# Prometheus (its server for the scrape test, promtool for the alert rules), openssl
# (the certificates of the secured stack, `stack up --secure`) and Chromium (the console's
# browser tests drive it headless, with a Chinese font for their screenshots).
# Uses apt-get when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail

declare -A package_of=(
  [redis-server]=redis-server
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [promtool]=prometheus
  [openssl]=openssl
  [chromium]=chromium
)

missing=()
for tool in redis-server java mvn promtool openssl chromium; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
# Not a program: a font with Chinese glyphs, for the console's screenshots.
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
