/* placeholder: replaced by the real module */
#include "chiploc_cmds.h"
#include <stdio.h>
int cmd_locate(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "chiploc: locate: not built yet\n"); return 1; }
int cmd_landmarks(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "chiploc: landmarks: not built yet\n"); return 1; }
