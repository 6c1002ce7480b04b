/* placeholder: replaced by the real module */
#include "chiploc_cmds.h"
#include <stdio.h>
int cmd_region(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "chiploc: region: not built yet\n"); return 1; }
