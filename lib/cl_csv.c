/* placeholder: replaced by the real module */
typedef int cl_placeholder_unit;
