#!/bin/sh
# Configures the copy of the NGINX tree in $NGX_BUILD with this module.
# Debian's nginx-dev ships conf_flags, the flags its nginx was built with,
# so the module's signature matches /usr/sbin/nginx; any other tree is
# configured --with-compat.

set -e
cd "$NGX_BUILD"

if [ -f conf_flags ]; then
    exec bash -c '. ./conf_flags &&
        ./configure --with-cc-opt="-g -O2 -fPIC" --with-ld-opt=-fPIC \
            "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$MODULE_DIR"'
fi

exec ./configure --with-compat --with-cc-opt="-g -O2 -fPIC" \
    --with-ld-opt=-fPIC --add-dynamic-module="$MODULE_DIR"
