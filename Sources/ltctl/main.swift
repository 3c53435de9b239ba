print("ltctl")
