#include "consensus/consensus.h"
