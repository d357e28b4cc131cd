stand-in signature of updates/stable.json (not a real signature)
