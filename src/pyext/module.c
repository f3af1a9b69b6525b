#include "pyext.h"
