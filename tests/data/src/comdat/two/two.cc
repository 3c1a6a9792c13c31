#include "../inc/widget.h"
int one(int x);
int main(int argc, char **argv)
{
	Widget w;
	return w.get(argc) + one(argc);
}
