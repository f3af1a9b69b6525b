#include "pyloot/handler.h"
