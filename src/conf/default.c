/* default.c: the configuration `ward serve` uses when no file exists.
 *
 * Kept as YAML text (not as C defaults) so it goes through the same loader and checks as
 * a user's file, and so `ward config default` can print it to start a real one from.
 * Called by core when /etc/ward/ward.yaml (or --config) is absent.
 */
#include "conf/conf.h"

const char conf_embedded_default[] =
        "# ward's embedded default configuration: monitor this host, listen on loopback,\n"
        "# keep data in ./ward-data (or $WARD_DATA). Copy to /etc/ward/ward.yaml to change it.\n"
        "server:\n"
        "  listen: 127.0.0.1:9797\n"
        "log:\n"
        "  level: info\n"
        "  format: auto\n"
        "storage:\n"
        "  data_dir: ${WARD_DATA:-./ward-data}\n";
