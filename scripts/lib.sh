# Shared shell helpers for rdb scripts (sourced, not run).

# wait_for_file PATH SECONDS: polls until PATH exists and is non-empty.
wait_for_file() {
  local path=$1 deadline=$((SECONDS + $2))
  while [ ! -s "$path" ]; do
    if [ $SECONDS -ge $deadline ]; then
      return 1
    fi
    sleep 0.05
  done
}

# json_field FILE FIELD: prints a top-level string/number field of a one-line JSON file.
json_field() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" "$1"
}

# http_get HOST:PORT PATH: prints the body of an HTTP GET (no curl needed).
http_get() {
  local host=${1%:*} port=${1##*:}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
