# Sourced by NGINX's configure while it writes the Makefile: the C++ core
# archive is (re)built by this repository's Makefile with the core's own
# flags (NGINX's C flags and -Werror do not fit C++17), and the module is
# linked after it.

cat << END                                                >> $NGX_MAKEFILE

$NGX_OBJS/ngx_http_rate_limit_module$ngx_modext:	$RL_CORE_BUILD/librl_core.a

$RL_CORE_BUILD/librl_core.a:	rl_core_archive

rl_core_archive:
	\$(MAKE) -C $ngx_addon_dir core CORE_BUILD=\$(abspath $RL_CORE_BUILD)

.PHONY:	rl_core_archive

END
