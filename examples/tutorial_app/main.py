from typing import List, Optional

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy.orm import Session

from .database import Base, SessionLocal, engine, get_db

# Pitfall 4: models.py has not been imported yet, so Base.metadata holds no tables and nothing is created.
Base.metadata.create_all(bind=engine)

from .models import Item, User  # noqa: E402

app = FastAPI()

# Pitfall 1: one Session for the whole process, shared by every request and every thread.
db = SessionLocal()


class UserCreate(BaseModel):
    email: str
    password: str


class ItemCreate(BaseModel):
    title: str
    description: Optional[str] = None


# Pitfall 3: the ORM class `User` as the response model; FastAPI cannot build a response field from it.
@app.post("/users/", response_model=User)
def create_user(user: UserCreate, db: Session = Depends(get_db)):
    if db.query(User).filter(User.email == user.email).first():
        raise HTTPException(status_code=400, detail="Email already registered")
    db_user = User(email=user.email, hashed_password=user.password + "notreallyhashed")
    db.add(db_user)
    db.commit()
    db.refresh(db_user)
    return db_user


@app.get("/users/{user_id}", response_model=User)
def read_user(user_id: int, db: Session = Depends(get_db)):
    db_user = db.query(User).filter(User.id == user_id).first()
    if db_user is None:
        raise HTTPException(status_code=404, detail="User not found")
    return db_user


@app.post("/users/{user_id}/items/")
def create_item_for_user(user_id: int, item: ItemCreate):
    db_item = Item(**item.dict(), owner_id=user_id)
    db.add(db_item)
    db.commit()
    db.refresh(db_item)
    return {"id": db_item.id, "title": db_item.title, "owner_id": db_item.owner_id}


@app.get("/items/")
def read_items(skip: int = 0, limit: int = 100) -> List[dict]:
    items = db.query(Item).offset(skip).limit(limit).all()
    return [{"id": i.id, "title": i.title, "owner_id": i.owner_id} for i in items]
