#!/bin/sh
# Render deploy/nginx/rdv.conf.template with the addresses from the environment:
#   RDV_LB_LISTEN=8080 RDV_BACKEND_1=... RDV_BACKEND_2=... RDV_BACKEND_3=... render.sh > rdv.conf
# Only these four variables are replaced (nginx's own $variables are left alone).
set -eu
for var in RDV_LB_LISTEN RDV_BACKEND_1 RDV_BACKEND_2 RDV_BACKEND_3; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "render.sh: set $var (e.g. RDV_LB_LISTEN=8080, RDV_BACKEND_1=127.0.0.1:9001)" >&2
        exit 2
    fi
    case $value in
        *[!A-Za-z0-9.:\[\]_-]*) echo "render.sh: $var=$value is not a host:port" >&2; exit 2 ;;
    esac
done
sed -e "s|\${RDV_LB_LISTEN}|$RDV_LB_LISTEN|g" \
    -e "s|\${RDV_BACKEND_1}|$RDV_BACKEND_1|g" \
    -e "s|\${RDV_BACKEND_2}|$RDV_BACKEND_2|g" \
    -e "s|\${RDV_BACKEND_3}|$RDV_BACKEND_3|g" \
    "$(dirname "$0")/rdv.conf.template"
