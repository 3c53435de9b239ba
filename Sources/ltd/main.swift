print("ltd")
