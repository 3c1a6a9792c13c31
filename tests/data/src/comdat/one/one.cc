#include "../inc/widget.h"
int one(int x)
{
	Widget w;
	return w.get(x);
}
